/**
 * Seeded dropout on webgpu in one dispatch each way, its mask drawn on the GPU. Elsewhere the
 * mask is a tensor (engine/dropout.ts) that is then multiplied in; on webgpu that mask was drawn
 * in JavaScript and uploaded every step (4 MB a step for the Net's fc1 at batch 1024). mulberry32's
 * draw i is a function of the seed and i alone, so each GPU thread draws its own value: the same
 * mask as on cpu and wasm, value for value, and the backward pass draws it again rather than
 * keeping it.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelArgs, uniformParams, WgslKernel, webgpuBackend, workgroupsFor } from './dispatch';

export const SEEDED_DROPOUT_KERNEL = 'SeededDropout';
const WORKGROUP = 256;

// y = x · mask, mask = 1/(1−rate) where mulberry32's draw i (state seed + (i+1)·0x6d2b79f5) is at
// or above rate·2³², else 0: engine/dropout.ts's fillDropoutMask, in u32 arithmetic (wrapping as Math.imul does).
const dropout = new WgslKernel(SEEDED_DROPOUT_KERNEL, /* wgsl */ `
struct Params { n: u32, row: u32, seed: u32, threshold: u32, keep: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.row;
  if (i >= p.n) { return; }
  var t = p.seed + (i + 1u) * 0x6d2b79f5u;
  t = (t ^ (t >> 15u)) * (t | 1u);
  t ^= t + (t ^ (t >> 7u)) * (t | 61u);
  let draw = t ^ (t >> 14u);
  y[i] = x[i] * select(0.0, p.keep, draw >= p.threshold);
}`);

interface DropoutAttrs { rate: number; seed: number }

function dropoutKernel({ inputs: { x }, attrs, backend }: KernelArgs): tf.TensorInfo {
  const { rate, seed } = attrs as unknown as DropoutAttrs;
  const gpu = webgpuBackend(backend);
  const y = gpu.makeTensorInfo(x.shape, 'float32');
  const n = tf.util.sizeFromShape(x.shape);
  const groups = workgroupsFor(n, WORKGROUP);
  const threshold = Math.floor(rate * 0x100000000);
  dropout.dispatch(gpu, [x, y], uniformParams([n, groups[0] * WORKGROUP, seed >>> 0, threshold], [Math.fround(1 / (1 - rate))]), groups);
  return y;
}

tf.registerKernel({ kernelName: SEEDED_DROPOUT_KERNEL, backendName: 'webgpu', kernelFunc: dropoutKernel as unknown as tf.KernelFunc });
// The gradient is dy times the same mask: the same kernel on dy, with the same seed.
tf.registerGradient({
  kernelName: SEEDED_DROPOUT_KERNEL,
  gradFunc: (dy, _saved, attrs) => ({
    x: () => tf.engine().runKernel(SEEDED_DROPOUT_KERNEL, { x: dy as tf.Tensor }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor,
  }),
});

/** x with each value zeroed with probability `rate` and the rest scaled by 1/(1−rate), on webgpu: one dispatch. */
export function seededDropoutOnWebgpu(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  return tf.engine().runKernel(SEEDED_DROPOUT_KERNEL, { x }, { rate, seed } as unknown as tf.NamedAttrMap) as tf.Tensor;
}
