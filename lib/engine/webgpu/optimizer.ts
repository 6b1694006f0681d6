/**
 * torch.optim.Adadelta's update of one weight as one WGSL dispatch (tfjs's ops take 16: a
 * step of the Net spent 128 of its 184 dispatches on the optimizer). Registered as the
 * `AdadeltaUpdate` kernel, so that tf.profile lists and times it like tfjs's own.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelArgs, uniformParams, WgslKernel, webgpuBackend, workgroupsFor } from './dispatch';

export const ADADELTA_KERNEL = 'AdadeltaUpdate';
const WORKGROUP = 256;

// The same float32 operations in the same order as the ops in training/optim.ts.
const adadelta = new WgslKernel(ADADELTA_KERNEL, /* wgsl */ `
struct Params { n: u32, row: u32, rho: f32, oneMinusRho: f32, eps: f32, lr: f32 }
@group(0) @binding(0) var<storage, read> value: array<f32>;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> squareAvg: array<f32>;
@group(0) @binding(3) var<storage, read> accDelta: array<f32>;
@group(0) @binding(4) var<storage, read_write> valueOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> squareAvgOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> accDeltaOut: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.row;
  if (i >= p.n) { return; }
  let g = grad[i];
  let s = squareAvg[i] * p.rho + (g * g) * p.oneMinusRho;
  let d = (sqrt(accDelta[i] + p.eps) / sqrt(s + p.eps)) * g;
  squareAvgOut[i] = s;
  accDeltaOut[i] = accDelta[i] * p.rho + (d * d) * p.oneMinusRho;
  valueOut[i] = value[i] - d * p.lr;
}`);

function adadeltaKernel({ inputs, attrs, backend }: KernelArgs): tf.TensorInfo[] {
  const { value, gradient, squareAvg, accDelta } = inputs;
  const { rho, epsilon, lr } = attrs as unknown as { rho: number; epsilon: number; lr: number };
  const gpu = webgpuBackend(backend);
  const outs = [0, 1, 2].map(() => gpu.makeTensorInfo(value.shape, 'float32'));
  const n = tf.util.sizeFromShape(value.shape);
  const groups = workgroupsFor(n, WORKGROUP);
  adadelta.dispatch(gpu, [value, gradient, squareAvg, accDelta, ...outs], uniformParams([n, groups[0] * WORKGROUP], [rho, 1 - rho, epsilon, lr]), groups);
  return outs;
}

tf.registerKernel({ kernelName: ADADELTA_KERNEL, backendName: 'webgpu', kernelFunc: adadeltaKernel as unknown as tf.KernelFunc });

/** One Adadelta step of `value` in one dispatch; the three variables take the new values. */
export function adadeltaOnWebgpu(value: tf.Variable, gradient: tf.Tensor, squareAvg: tf.Variable, accDelta: tf.Variable,
  rho: number, epsilon: number, lr: number): void {
  const outs = tf.engine().runKernel(ADADELTA_KERNEL, { value, gradient, squareAvg, accDelta },
    { rho, epsilon, lr } as unknown as tf.NamedAttrMap) as tf.Tensor[];
  [value, squareAvg, accDelta].forEach((v, i) => {
    v.assign(outs[i]);
    outs[i].dispose();
  });
}
