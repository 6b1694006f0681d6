/**
 * The backward pass's small steps, one dispatch each where tfjs takes two: ReLU's gradient
 * (tfjs: step, then multiply), a bias's gradient, the sum over every axis but the channels
 * (tfjs: transpose, then reduce), and max pooling's gradient over non-overlapping windows
 * (tfjs: a pass for the argmax positions, then one to scatter). Installed over tfjs-backend-
 * webgpu's own by installBackwardKernels(); every other case still runs tfjs's kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelArgs, KernelFunc, replaceWebgpuKernel, uniformParams, WgslKernel, webgpuBackend, workgroupTotal, workgroupsFor } from './dispatch';

const WORKGROUP = 256;

// dx = dy where x > 0, else 0: tfjs's mul(dy, step(x)) in one pass.
const reluGrad = new WgslKernel('ReluGrad', /* wgsl */ `
struct Params { n: u32, row: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.row;
  if (i >= p.n) { return; }
  dx[i] = select(0.0, dy[i], x[i] > 0.0);
}`);

// out[c] = Σ_r x[r, c]: one workgroup per channel, its threads striding over the rows (the
// workgroups of neighbouring channels read the same rows, so the cache serves them once).
const columnSum = new WgslKernel('ColumnSum', /* wgsl */ `
struct Params { rows: u32, cols: u32, groupRow: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
${workgroupTotal(WORKGROUP)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = g.x + g.y * p.groupRow;
  var s = 0.0;
  if (c < p.cols) {
    for (var r = t; r < p.rows; r += ${WORKGROUP}u) { s += x[r * p.cols + c]; }
  }
  let sum = total(t, s);
  if (t == 0u && c < p.cols) { out[c] = sum; }
}`);

// dx at each input position: dy of its window if it holds the window's maximum (the first in
// row-major order on ties, as the cpu backend and PyTorch pick; tfjs-webgpu's own picks the
// last), else 0. Windows do not overlap, so each position has at most one.
const maxPoolGrad = new WgslKernel('MaxPoolGradNonOverlapping', /* wgsl */ `
struct Params { n: u32, h: u32, w: u32, c: u32, outH: u32, outW: u32, kh: u32, kw: u32, padT: u32, padL: u32, row: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.row;
  if (i >= p.n * p.h * p.w * p.c) { return; }
  let ch = i % p.c;
  let col = (i / p.c) % p.w;
  let row = (i / (p.c * p.w)) % p.h;
  let b = i / (p.c * p.w * p.h);
  let r = (row + p.padT) / p.kh;
  let q = (col + p.padL) / p.kw;
  if (r >= p.outH || q >= p.outW) { dx[i] = 0.0; return; }
  var best = 0u;
  var bestValue = 0.0;
  var found = false;
  for (var a = 0u; a < p.kh; a++) {
    let xr = r * p.kh + a;
    if (xr < p.padT || xr - p.padT >= p.h) { continue; }
    for (var e = 0u; e < p.kw; e++) {
      let xc = q * p.kw + e;
      if (xc < p.padL || xc - p.padL >= p.w) { continue; }
      let at = ((b * p.h + xr - p.padT) * p.w + xc - p.padL) * p.c + ch;
      let v = x[at];
      if (!found || v > bestValue) { bestValue = v; best = at; found = true; }
    }
  }
  dx[i] = select(0.0, dy[((b * p.outH + r) * p.outW + q) * p.c + ch], best == i);
}`);

const RELU_GRAD = 'ReluGrad';

function reluGradKernel({ inputs: { dy, x }, backend }: KernelArgs): tf.TensorInfo {
  const gpu = webgpuBackend(backend);
  const dx = gpu.makeTensorInfo(x.shape, 'float32');
  const n = tf.util.sizeFromShape(x.shape);
  const groups = workgroupsFor(n, WORKGROUP);
  reluGrad.dispatch(gpu, [dy, x, dx], uniformParams([n, groups[0] * WORKGROUP]), groups);
  return dx;
}

/** tfjs's Sum, with the sum over every axis but the last (a bias's gradient) in one dispatch. */
function sumKernel(tfjsSum: KernelFunc): KernelFunc {
  return (args) => {
    const { x } = args.inputs;
    const rank = x.shape.length;
    const axes = tf.util.parseAxisParam(args.attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
    const allButLast = rank >= 2 && x.dtype === 'float32' && axes.length === rank - 1 && axes.every((a, i) => a === i);
    if (!allButLast) return tfjsSum(args);
    const gpu = webgpuBackend(args.backend);
    const cols = x.shape[rank - 1];
    const rows = tf.util.sizeFromShape(x.shape) / cols;
    const out = gpu.makeTensorInfo(args.attrs.keepDims ? [...x.shape.slice(0, -1).map(() => 1), cols] : [cols], 'float32');
    const groups = workgroupsFor(cols, 1);
    columnSum.dispatch(gpu, [x, out], uniformParams([rows, cols, groups[0]]), groups);
    return out;
  };
}

/** tfjs's MaxPoolGrad, with non-overlapping 2-D windows (pool size = stride) in one dispatch. */
function maxPoolGradKernel(tfjsMaxPoolGrad: KernelFunc): KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs;
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as
      { filterSize: number | [number, number]; strides: number | [number, number]; pad: 'valid' | 'same' | number; dimRoundingMode?: 'floor' | 'round' | 'ceil' };
    const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
    const nonOverlapping = info.strideHeight === info.filterHeight && info.strideWidth === info.filterWidth &&
      info.dilationHeight === 1 && info.dilationWidth === 1 && input.dtype === 'float32';
    if (!nonOverlapping) return tfjsMaxPoolGrad(args);
    const gpu = webgpuBackend(args.backend);
    const dx = gpu.makeTensorInfo(input.shape, 'float32');
    const groups = workgroupsFor(tf.util.sizeFromShape(input.shape), WORKGROUP);
    maxPoolGrad.dispatch(gpu, [dy, input, dx], uniformParams([info.batchSize, info.inHeight, info.inWidth, info.inChannels,
      info.outHeight, info.outWidth, info.filterHeight, info.filterWidth, info.padInfo.top, info.padInfo.left, groups[0] * WORKGROUP]), groups);
    return dx;
  };
}

let installed = false;

/** Puts the kernels above in place; once, after tfjs-backend-webgpu has registered its own. */
export function installBackwardKernels(): void {
  if (installed) return;
  installed = true;
  tf.registerKernel({ kernelName: RELU_GRAD, backendName: 'webgpu', kernelFunc: reluGradKernel as unknown as tf.KernelFunc });
  replaceWebgpuKernel('Sum', sumKernel);
  replaceWebgpuKernel('MaxPoolGrad', maxPoolGradKernel);
  // ReLU's gradient is registered for every backend; others keep tfjs's own.
  const tfjsRelu = tf.getGradient('Relu')!;
  tf.registerGradient({
    ...tfjsRelu,
    gradFunc: (dy, saved, attrs) => tf.getBackend() !== 'webgpu' ? tfjsRelu.gradFunc(dy, saved, attrs)
      : { x: () => tf.engine().runKernel(RELU_GRAD, { dy: dy as tf.Tensor, x: saved[0] }) as tf.Tensor },
  });
}
