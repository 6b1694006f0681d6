/**
 * The end of a classifier's step on webgpu: log-softmax over each row and the negative
 * log-likelihood, each one dispatch forward and one backward. tfjs composes them from
 * 12 dispatches forward (max, subtract, exp, sum, log, subtract; one-hot, multiply, sum,
 * mean, negate) and 6 backward; a row is 10 values, so the launches were the whole cost.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelArgs, uniformParams as params, WgslKernel, webgpuBackend, workgroupTotal, workgroupsFor } from './dispatch';

const ROWS_PER_GROUP = 64;
const REDUCE_GROUP = 256;

// y = (x − max) − log Σ exp(x − max), as tf.logSoftmax computes it.
const logSoftmax = new WgslKernel('LogSoftmaxRows', /* wgsl */ `
struct Params { rows: u32, cols: u32, stride: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(${ROWS_PER_GROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let r = id.x + id.y * p.stride;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var m = x[base];
  for (var j = 1u; j < p.cols; j++) { m = max(m, x[base + j]); }
  var s = 0.0;
  for (var j = 0u; j < p.cols; j++) { s += exp(x[base + j] - m); }
  let l = log(s);
  for (var j = 0u; j < p.cols; j++) { y[base + j] = (x[base + j] - m) - l; }
}`);

// dx = dy − (Σ dy) · exp(y), tf.logSoftmax's gradient.
const logSoftmaxGrad = new WgslKernel('LogSoftmaxRowsGrad', /* wgsl */ `
struct Params { rows: u32, cols: u32, stride: u32 }
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(${ROWS_PER_GROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let r = id.x + id.y * p.stride;
  if (r >= p.rows) { return; }
  let base = r * p.cols;
  var s = 0.0;
  for (var j = 0u; j < p.cols; j++) { s += dy[base + j]; }
  for (var j = 0u; j < p.cols; j++) { dx[base + j] = dy[base + j] - s * exp(y[base + j]); }
}`);

// loss = −(Σ_rows logp[r, target[r]]) / rows · weight, in one workgroup.
const nll = new WgslKernel('NllLoss', /* wgsl */ `
struct Params { rows: u32, cols: u32, scale: f32 }
@group(0) @binding(0) var<storage, read> logp: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
${workgroupTotal(REDUCE_GROUP)}
@compute @workgroup_size(${REDUCE_GROUP})
fn main(@builtin(local_invocation_index) t: u32) {
  var s = 0.0;
  for (var r = t; r < p.rows; r += ${REDUCE_GROUP}u) {
    let c = labels[r];
    if (c >= 0 && u32(c) < p.cols) { s += logp[r * p.cols + u32(c)]; }
  }
  let sum = total(t, s);
  if (t == 0u) { loss[0] = -(sum / f32(p.rows)) * p.scale; }
}`);

// dlogp[r, j] = −dloss · weight / rows where j is the row's target, else 0.
const nllGrad = new WgslKernel('NllLossGrad', /* wgsl */ `
struct Params { rows: u32, cols: u32, scale: f32, stride: u32 }
@group(0) @binding(0) var<storage, read> dloss: array<f32>;
@group(0) @binding(1) var<storage, read> labels: array<i32>;
@group(0) @binding(2) var<storage, read_write> dlogp: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(${REDUCE_GROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x + id.y * p.stride;
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  dlogp[i] = select(0.0, -(dloss[0] * p.scale) / f32(p.rows), u32(labels[r]) == i % p.cols);
}`);

function register(name: string, kernelFunc: (a: KernelArgs) => tf.TensorInfo): void {
  tf.registerKernel({ kernelName: name, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
}

register(logSoftmax.name, ({ inputs: { x }, backend }) => {
  const gpu = webgpuBackend(backend);
  const [rows, cols] = x.shape;
  const y = gpu.makeTensorInfo(x.shape, 'float32');
  const groups = workgroupsFor(rows, ROWS_PER_GROUP);
  logSoftmax.dispatch(gpu, [x, y], params([rows, cols, groups[0] * ROWS_PER_GROUP]), groups);
  return y;
});

register(logSoftmaxGrad.name, ({ inputs: { dy, y }, backend }) => {
  const gpu = webgpuBackend(backend);
  const [rows, cols] = y.shape;
  const dx = gpu.makeTensorInfo(y.shape, 'float32');
  const groups = workgroupsFor(rows, ROWS_PER_GROUP);
  logSoftmaxGrad.dispatch(gpu, [dy, y, dx], params([rows, cols, groups[0] * ROWS_PER_GROUP]), groups);
  return dx;
});

register(nll.name, ({ inputs: { logp, target }, attrs, backend }) => {
  const gpu = webgpuBackend(backend);
  const [rows, cols] = logp.shape;
  const loss = gpu.makeTensorInfo([], 'float32');
  nll.dispatch(gpu, [logp, target, loss], params([rows, cols], [attrs.weight as number]), [1, 1]);
  return loss;
});

register(nllGrad.name, ({ inputs: { dloss, target }, attrs, backend }) => {
  const gpu = webgpuBackend(backend);
  const [rows, cols] = attrs.shape as number[];
  const dlogp = gpu.makeTensorInfo([rows, cols], 'float32');
  const groups = workgroupsFor(rows * cols, REDUCE_GROUP);
  nllGrad.dispatch(gpu, [dloss, target, dlogp], params([rows, cols], [attrs.weight as number], [groups[0] * REDUCE_GROUP]), groups);
  return dlogp;
});

const run = (name: string, inputs: Record<string, tf.Tensor>, attrs: object = {}) =>
  tf.engine().runKernel(name, inputs, attrs as tf.NamedAttrMap) as tf.Tensor;

/** tf.logSoftmax over the last axis of a [rows, classes] tensor, one dispatch each way. */
export const logSoftmaxOnWebgpu = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const y = run(logSoftmax.name, { x });
  save([y]);
  return { value: y, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => run(logSoftmaxGrad.name, { dy, y: saved[0] }) };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/** The mean negative log-likelihood of `logProbs` at `target`, times `weight`; one dispatch each way. */
export function nllLossOnWebgpu(logProbs: tf.Tensor, target: tf.Tensor, weight: number): tf.Scalar {
  const shape = logProbs.shape;
  const f = tf.customGrad(((logp: tf.Tensor) => ({
    value: run(nll.name, { logp, target }, { weight }),
    gradFunc: (dloss: tf.Tensor) => run(nllGrad.name, { dloss, target }, { weight, shape }),
  })) as unknown as Parameters<typeof tf.customGrad>[0]) as (logp: tf.Tensor) => tf.Scalar;
  return f(logProbs);
}
