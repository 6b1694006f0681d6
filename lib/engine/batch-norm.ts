/**
 * Batch normalisation in training as one kernel with a closed-form gradient kernel.
 *
 * tfjs builds it from tf.moments and tf.batchNorm, whose gradients broadcast per-channel
 * values back over the batch with Tile, Multiply and Sum: on wasm, 40% of a batch-norm
 * model's step. Here the forward pass (per-channel sums, then y = x·a + b) and the
 * backward pass (Σdy and Σdy·x, then dx = dy·k + x·u + w) are two passes each over the
 * values, in place in the wasm memory (engine/js-kernel.ts), with the gradient registered
 * as tfjs's own are. Backends without them (tensorflow) use tf.moments and tf.batchNorm.
 * Channels are the last axis; every other axis is reduced over, as PyTorch's BatchNorm2d
 * does over N, H and W.
 */
import * as tf from '@tensorflow/tfjs';
import { hasJsKernel, registerJsKernel } from './js-kernel';

export const BATCH_NORM_KERNELS = { forward: 'BatchNormTraining', backward: 'BatchNormTrainingGrad' } as const;

export interface BatchNormResult {
  /** The normalised, scaled and shifted input. */
  y: tf.Tensor;
  /** The batch's per-channel mean and biased variance (what it was normalised with). */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** Mean, biased variance and 1/√(variance+ε) per channel (float64 sums); y = (x − mean)·invStd·γ + β. */
function forwardValues(xs: Float32Array, g: Float32Array, b: Float32Array, epsilon: number, C: number,
  [ys, meanOut, varOut, invStdOut]: Float32Array[]): void {
  const rows = xs.length / C;
  const sum = new Float64Array(C);
  const squares = new Float64Array(C);
  for (let i = 0, r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++, i++) {
      const v = xs[i];
      sum[c] += v;
      squares[c] += v * v;
    }
  }
  const scale = new Float32Array(C);
  const shift = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const mean = sum[c] / rows;
    const variance = Math.max(0, squares[c] / rows - mean * mean);
    const invStd = 1 / Math.sqrt(variance + epsilon);
    meanOut[c] = mean;
    varOut[c] = variance;
    invStdOut[c] = invStd;
    scale[c] = g[c] * invStd;
    shift[c] = b[c] - mean * g[c] * invStd;
  }
  for (let i = 0, r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++, i++) ys[i] = xs[i] * scale[c] + shift[c];
  }
}

/**
 * dβ = Σdy, dγ = Σdy·x̂ with x̂ = (x − mean)·invStd, and
 * dx = γ·invStd·(dy − dβ/M − x̂·dγ/M), which per channel is dx = dy·k + x·u + w.
 */
function backwardValues(dys: Float32Array, xs: Float32Array, g: Float32Array, m: Float32Array, s: Float32Array, C: number,
  [dxs, dGamma, dBeta]: Float32Array[]): void {
  const rows = xs.length / C;
  const sumDy = new Float64Array(C);
  const sumDyX = new Float64Array(C);
  for (let i = 0, r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++, i++) {
      const d = dys[i];
      sumDy[c] += d;
      sumDyX[c] += d * xs[i];
    }
  }
  const k = new Float32Array(C);
  const u = new Float32Array(C);
  const w = new Float32Array(C);
  for (let c = 0; c < C; c++) {
    const dg = s[c] * (sumDyX[c] - m[c] * sumDy[c]);
    dGamma[c] = dg;
    dBeta[c] = sumDy[c];
    const kc = g[c] * s[c];
    const uc = -kc * s[c] * dg / rows; // the −k·x̂·dγ/M term per unit of x (x̂ = (x − mean)·invStd)
    k[c] = kc;
    u[c] = uc;
    w[c] = -kc * sumDy[c] / rows - m[c] * uc;
  }
  for (let i = 0, r = 0; r < rows; r++) {
    for (let c = 0; c < C; c++, i++) dxs[i] = dys[i] * k[c] + xs[i] * u[c] + w[c];
  }
}

registerJsKernel(BATCH_NORM_KERNELS.forward, ['x', 'gamma', 'beta'], ({ inputs: { x } }) => {
  const C = x.shape[x.shape.length - 1];
  return [x.shape, [C], [C], [C]];
}, ([xs, g, b], outs, { inputs, attrs }) => forwardValues(xs, g, b, attrs.epsilon as number, inputs.gamma.shape[0], outs));

registerJsKernel(BATCH_NORM_KERNELS.backward, ['dy', 'x', 'gamma', 'mean', 'invStd'],
  ({ inputs: { x, gamma } }) => [x.shape, gamma.shape, gamma.shape],
  ([dys, xs, g, m, s], outs, { inputs }) => backwardValues(dys, xs, g, m, s, inputs.gamma.shape[0], outs));

tf.registerGradient({
  kernelName: BATCH_NORM_KERNELS.forward,
  inputsToSave: ['x', 'gamma'],
  outputsToSave: [false, true, false, true], // mean, invStd
  gradFunc: (dys, saved) => {
    const [x, gamma, mean, invStd] = saved;
    const dy = (dys as tf.Tensor[])[0]; // the statistics' gradients are zero: only y feeds the loss
    // One kernel gives all three; computed here, not in the per-input closures, which tfjs
    // runs each in its own tidy (that would dispose the other two).
    const [dx, dGamma, dBeta] = tf.engine().runKernel(BATCH_NORM_KERNELS.backward, { dy, x, gamma, mean, invStd }, {}) as tf.Tensor[];
    return { x: () => dx, gamma: () => dGamma, beta: () => dBeta };
  },
});

/**
 * Normalises x by its batch statistics per channel (biased variance, as PyTorch normalises),
 * then y = x̂·γ + β. Differentiable in x, γ and β; the statistics returned are constants
 * for the caller's running averages.
 */
export function batchNormTraining(x: tf.Tensor, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): BatchNormResult {
  if (hasJsKernel(BATCH_NORM_KERNELS.forward)) {
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_KERNELS.forward, { x, gamma, beta }, { epsilon }) as tf.Tensor[];
    return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  }
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const y = tf.batchNorm(x, mean, variance, beta, gamma, epsilon);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
