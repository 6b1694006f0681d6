/**
 * Batch normalisation in training on webgpu: engine/batch-norm.ts's two kernels, each as two
 * dispatches (per-channel sums, then an elementwise pass), where tfjs's moments and batchNorm
 * with their gradients take about 40. The same arithmetic as the wasm and cpu kernels: sums of
 * x − x₀ (x₀ the first row) for the statistics, dx = dy·k + (x − mean)·u + w for the gradient.
 */
import * as tf from '@tensorflow/tfjs';
import { BATCH_NORM_KERNELS } from '../batch-norm';
import { KernelArgs, uniformParams as params, WgslKernel, webgpuBackend, workgroupTotal, workgroupsFor } from './dispatch';

const WORKGROUP = 256;

// A workgroup per channel: each thread sums its rows in a strided loop, then total() adds the threads' sums.
const CHANNEL_REDUCTION = workgroupTotal(WORKGROUP);

const ROWS_PARAMS = 'struct Params { rows: u32, cols: u32, groupRow: u32, epsilon: f32 }';

// mean, biased variance and 1/√(variance + ε) per channel. The mean from the sum of x − x₀ (x₀
// the first row); the variance from Σ(x − mean)² in a second pass over the rows, not from the
// sums of squares: in float32 those cancel where x₀ is far from the mean (a sparse ReLU output).
const statistics = new WgslKernel('BatchNormStatistics', /* wgsl */ `
${ROWS_PARAMS}
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> mean: array<f32>;
@group(0) @binding(2) var<storage, read_write> variance: array<f32>;
@group(0) @binding(3) var<storage, read_write> invStd: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
${CHANNEL_REDUCTION}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = min(g.x + g.y * p.groupRow, p.cols - 1u); // a workgroup past the last channel repeats it, writing nothing
  let n = f32(p.rows);
  var shifted = 0.0;
  for (var r = t; r < p.rows; r += ${WORKGROUP}u) { shifted += x[r * p.cols + c] - x[c]; }
  let m = x[c] + total(t, shifted) / n;
  var squares = 0.0;
  for (var r = t; r < p.rows; r += ${WORKGROUP}u) { let d = x[r * p.cols + c] - m; squares += d * d; }
  let v = total(t, squares) / n;
  if (t == 0u && g.x + g.y * p.groupRow < p.cols) {
    mean[c] = m;
    variance[c] = v;
    invStd[c] = 1.0 / sqrt(v + p.epsilon);
  }
}`);

// y = (x − mean)·γ·invStd + β.
const normalise = new WgslKernel('BatchNormApply', /* wgsl */ `
struct Params { n: u32, cols: u32, row: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> invStd: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.row;
  if (i >= p.n) { return; }
  let c = i % p.cols;
  y[i] = (x[i] - mean[c]) * (gamma[c] * invStd[c]) + beta[c];
}`);

// dβ = Σdy, dγ = invStd·Σdy·(x − mean) per channel.
const gradientSums = new WgslKernel('BatchNormGradSums', /* wgsl */ `
${ROWS_PARAMS}
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> invStd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dGamma: array<f32>;
@group(0) @binding(5) var<storage, read_write> dBeta: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
${CHANNEL_REDUCTION}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) g: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let c = min(g.x + g.y * p.groupRow, p.cols - 1u);
  var a = 0.0;
  var b = 0.0;
  for (var r = t; r < p.rows; r += ${WORKGROUP}u) {
    let i = r * p.cols + c;
    a += dy[i];
    b += dy[i] * (x[i] - mean[c]);
  }
  let sumDy = total(t, a);
  let sumDyCentred = total(t, b);
  if (t == 0u && g.x + g.y * p.groupRow < p.cols) {
    dBeta[c] = sumDy;
    dGamma[c] = invStd[c] * sumDyCentred;
  }
}`);

// dx = γ·invStd·(dy − dβ/M − x̂·dγ/M) = dy·k + (x − mean)·u + w.
const gradient = new WgslKernel('BatchNormGradApply', /* wgsl */ `
struct Params { n: u32, cols: u32, row: u32, rows: f32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> invStd: array<f32>;
@group(0) @binding(4) var<storage, read> gamma: array<f32>;
@group(0) @binding(5) var<storage, read> dGamma: array<f32>;
@group(0) @binding(6) var<storage, read> dBeta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<uniform> p: Params;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.row;
  if (i >= p.n) { return; }
  let c = i % p.cols;
  let s = invStd[c];
  let k = gamma[c] * s;
  let u = -k * s * dGamma[c] / p.rows;
  let w = -k * dBeta[c] / p.rows;
  dx[i] = dy[i] * k + (x[i] - mean[c]) * u + w;
}`);

function shapeOf(x: tf.TensorInfo) {
  const cols = x.shape[x.shape.length - 1];
  const n = tf.util.sizeFromShape(x.shape);
  return { n, cols, rows: n / cols, channelGroups: workgroupsFor(cols, 1), elementGroups: workgroupsFor(n, WORKGROUP) };
}

function forwardKernel({ inputs: { x, gamma, beta }, attrs, backend }: KernelArgs): tf.TensorInfo[] {
  const gpu = webgpuBackend(backend);
  const { n, cols, rows, channelGroups, elementGroups } = shapeOf(x);
  const [mean, variance, invStd] = [0, 1, 2].map(() => gpu.makeTensorInfo([cols], 'float32'));
  statistics.dispatch(gpu, [x, mean, variance, invStd], params([rows, cols, channelGroups[0]], [attrs.epsilon as number]), channelGroups);
  const y = gpu.makeTensorInfo(x.shape, 'float32');
  normalise.dispatch(gpu, [x, mean, invStd, gamma, beta, y], params([n, cols, elementGroups[0] * WORKGROUP], []), elementGroups);
  return [y, mean, variance, invStd];
}

function backwardKernel({ inputs: { dy, x, gamma, mean, invStd }, backend }: KernelArgs): tf.TensorInfo[] {
  const gpu = webgpuBackend(backend);
  const { n, cols, rows, channelGroups, elementGroups } = shapeOf(x);
  const [dGamma, dBeta] = [0, 1].map(() => gpu.makeTensorInfo([cols], 'float32'));
  gradientSums.dispatch(gpu, [dy, x, mean, invStd, dGamma, dBeta], params([rows, cols, channelGroups[0]], [0]), channelGroups);
  const dx = gpu.makeTensorInfo(x.shape, 'float32');
  gradient.dispatch(gpu, [dy, x, mean, invStd, gamma, dGamma, dBeta, dx], params([n, cols, elementGroups[0] * WORKGROUP], [rows]), elementGroups);
  return [dx, dGamma, dBeta];
}

tf.registerKernel({ kernelName: BATCH_NORM_KERNELS.forward, backendName: 'webgpu', kernelFunc: forwardKernel as unknown as tf.KernelFunc });
tf.registerKernel({ kernelName: BATCH_NORM_KERNELS.backward, backendName: 'webgpu', kernelFunc: backwardKernel as unknown as tf.KernelFunc });

// PyTorch's running averages: old·(1 − m) + batch·m, the variance unbiased (·rows/(rows − 1)).
const MOVING_AVERAGES = 'BatchNormMovingAverages';
const movingAverages = new WgslKernel(MOVING_AVERAGES, /* wgsl */ `
struct Params { cols: u32, keep: f32, momentum: f32, unbias: f32 }
@group(0) @binding(0) var<storage, read> movingMean: array<f32>;
@group(0) @binding(1) var<storage, read> movingVariance: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> variance: array<f32>;
@group(0) @binding(4) var<storage, read_write> newMean: array<f32>;
@group(0) @binding(5) var<storage, read_write> newVariance: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let c = id.x;
  if (c >= p.cols) { return; }
  newMean[c] = movingMean[c] * p.keep + mean[c] * p.momentum;
  newVariance[c] = movingVariance[c] * p.keep + (variance[c] * p.unbias) * p.momentum;
}`);

tf.registerKernel({
  kernelName: MOVING_AVERAGES,
  backendName: 'webgpu',
  kernelFunc: (({ inputs: { movingMean, movingVariance, mean, variance }, attrs, backend }: KernelArgs) => {
    const gpu = webgpuBackend(backend);
    const cols = mean.shape[0];
    const outs = [0, 1].map(() => gpu.makeTensorInfo([cols], 'float32'));
    const { momentum, rows } = attrs as unknown as { momentum: number; rows: number };
    movingAverages.dispatch(gpu, [movingMean, movingVariance, mean, variance, ...outs],
      params([cols], [1 - momentum, momentum, rows / Math.max(1, rows - 1)]), [Math.ceil(cols / 64), 1]);
    return outs;
  }) as unknown as tf.KernelFunc,
});

/** The new running mean and variance after a batch of `rows` rows, in one dispatch. */
export function movingAveragesOnWebgpu(movingMean: tf.Tensor, movingVariance: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor,
  momentum: number, rows: number): [tf.Tensor, tf.Tensor] {
  return tf.engine().runKernel(MOVING_AVERAGES, { movingMean, movingVariance, mean, variance },
    { momentum, rows } as unknown as tf.NamedAttrMap) as [tf.Tensor, tf.Tensor];
}
