/**
 * Batch normalisation in training as one kernel with a closed-form gradient kernel.
 *
 * tfjs builds it from tf.moments and tf.batchNorm, whose gradients broadcast per-channel
 * values back over the batch with Tile, Multiply and Sum: on wasm, 40% of a batch-norm
 * model's step. Here the forward pass (per-channel sums, then y = (x − mean)·a + β) and
 * the backward pass (Σdy and Σdy·(x − mean), then dx = dy·k + (x − mean)·u + w) are two
 * passes each over the values: SIMD in place in the wasm memory, JavaScript loops on cpu;
 * the gradient is registered as tfjs's own are. Backends without them (tensorflow) use
 * tf.moments and tf.batchNorm.
 * Channels are the last axis; every other axis is reduced over, as PyTorch's BatchNorm2d
 * does over N, H and W.
 */
import * as tf from '@tensorflow/tfjs';
import { channelAffine, channelSums, WasmBackend } from './wasm/simd-kernels';

export const BATCH_NORM_KERNELS = { forward: 'BatchNormTraining', backward: 'BatchNormTrainingGrad' } as const;

export interface BatchNormResult {
  /** The normalised, scaled and shifted input. */
  y: tf.Tensor;
  /** The batch's per-channel mean and biased variance (what it was normalised with). */
  mean: tf.Tensor1D;
  variance: tf.Tensor1D;
}

/** The two passes a batch-norm kernel makes over its tensors, on one backend. */
interface ChannelPasses {
  /** [Σ(a − shiftA), Σ(a − shiftA)·(b − shiftB)] per channel, in float64 (the product in float32). */
  sums(a: tf.TensorInfo, b: tf.TensorInfo, shiftA: Float32Array, shiftB: Float32Array): [Float64Array, Float64Array];
  /** The first C values of a tensor (its first row). */
  firstRow(t: tf.TensorInfo, C: number): Float32Array;
  /** A new tensor of a's shape: a·p[c] + (b − shiftB[c])·q[c] + r[c]. */
  affine(a: tf.TensorInfo, b: tf.TensorInfo, p: Float32Array, q: Float32Array, r: Float32Array, shiftB: Float32Array): tf.TensorInfo;
  /** A new 1-D tensor holding `values`. */
  vector(values: Float32Array): tf.TensorInfo;
}

/** On wasm: SIMD passes in place in the wasm memory (engine/wasm/simd-kernels.wat). */
function wasmPasses(backend: WasmBackend): ChannelPasses {
  return {
    sums: (a, b, shiftA, shiftB) => channelSums(backend, a, b, shiftA, shiftB),
    firstRow: (t, C) => backend.typedArrayFromHeap(t).slice(0, C),
    affine: (a, b, p, q, r, shiftB) => {
      const out = backend.makeOutput(a.shape, 'float32');
      channelAffine(backend, a, b, out, p, q, r, shiftB);
      return out;
    },
    vector: (values) => {
      const out = backend.makeOutput([values.length], 'float32');
      backend.typedArrayFromHeap(out).set(values);
      return out;
    },
  };
}

interface CpuBackend {
  readSync(id: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

/** On cpu: the same passes as JavaScript loops over the backend's arrays. */
function cpuPasses(backend: CpuBackend): ChannelPasses {
  return {
    sums: (a, b, shiftA, shiftB) => {
      const [as, bs] = [backend.readSync(a.dataId), backend.readSync(b.dataId)];
      const C = shiftA.length;
      const sum = new Float64Array(C);
      const products = new Float64Array(C);
      for (let i = 0; i < as.length;) {
        for (let c = 0; c < C; c++, i++) {
          const da = Math.fround(as[i] - shiftA[c]);
          sum[c] += da;
          products[c] += Math.fround(da * Math.fround(bs[i] - shiftB[c]));
        }
      }
      return [sum, products];
    },
    firstRow: (t, C) => backend.readSync(t.dataId).slice(0, C),
    affine: (a, b, p, q, r, shiftB) => {
      const [as, bs] = [backend.readSync(a.dataId), backend.readSync(b.dataId)];
      const out = new Float32Array(as.length);
      const C = p.length;
      for (let i = 0; i < as.length;) {
        for (let c = 0; c < C; c++, i++) out[i] = as[i] * p[c] + Math.fround(bs[i] - shiftB[c]) * q[c] + r[c];
      }
      return backend.makeTensorInfo(a.shape, 'float32', out);
    },
    vector: (values) => backend.makeTensorInfo([values.length], 'float32', values),
  };
}

function passesFor(backend: tf.KernelBackend): ChannelPasses {
  return tf.getBackend() === 'wasm' ? wasmPasses(backend as unknown as WasmBackend) : cpuPasses(backend as unknown as CpuBackend);
}

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; attrs: tf.NamedAttrMap; backend: tf.KernelBackend };

const valuesOf = (backend: tf.KernelBackend, t: tf.TensorInfo) => backend.readSync(t.dataId) as Float32Array;

/**
 * Mean, biased variance and 1/√(variance+ε) per channel from the sums of d = x − x₀ and d²
 * (x₀: the first row, so that a mean large against the spread cancels nothing); then
 * y = (x − mean)·γ·invStd + β.
 */
function forwardKernel({ inputs: { x, gamma, beta }, attrs, backend }: KernelArgs): tf.TensorInfo[] {
  const passes = passesFor(backend);
  const C = x.shape[x.shape.length - 1];
  const rows = tf.util.sizeFromShape(x.shape) / C;
  const [g, b] = [valuesOf(backend, gamma), valuesOf(backend, beta)];
  const x0 = passes.firstRow(x, C);
  const [sum, squares] = passes.sums(x, x, x0, x0);
  const [mean, variance, invStd, scale] = Array.from({ length: 4 }, () => new Float32Array(C));
  for (let c = 0; c < C; c++) {
    const d = sum[c] / rows;
    const m = x0[c] + d;
    const v = Math.max(0, squares[c] / rows - d * d);
    const s = 1 / Math.sqrt(v + (attrs.epsilon as number));
    mean[c] = m;
    variance[c] = v;
    invStd[c] = s;
    scale[c] = g[c] * s;
  }
  const y = passes.affine(x, x, new Float32Array(C), scale, b, mean);
  return [y, passes.vector(mean), passes.vector(variance), passes.vector(invStd)];
}

/**
 * dβ = Σdy, dγ = Σdy·x̂ = invStd·Σdy·(x − mean) with x̂ = (x − mean)·invStd, and
 * dx = γ·invStd·(dy − dβ/M − x̂·dγ/M), which per channel is dx = dy·k + (x − mean)·u + w.
 */
function backwardKernel({ inputs: { dy, x, gamma, mean, invStd }, backend }: KernelArgs): tf.TensorInfo[] {
  const passes = passesFor(backend);
  const C = x.shape[x.shape.length - 1];
  const rows = tf.util.sizeFromShape(x.shape) / C;
  const [g, m, s] = [gamma, mean, invStd].map((t) => valuesOf(backend, t));
  const [sumDy, sumDyCentred] = passes.sums(dy, x, new Float32Array(C), m);
  const [dGamma, dBeta, k, u, w] = Array.from({ length: 5 }, () => new Float32Array(C));
  for (let c = 0; c < C; c++) {
    const dg = s[c] * sumDyCentred[c];
    dGamma[c] = dg;
    dBeta[c] = sumDy[c];
    const kc = g[c] * s[c];
    k[c] = kc;
    u[c] = -kc * s[c] * dg / rows; // the −k·x̂·dγ/M term per unit of x − mean
    w[c] = -kc * sumDy[c] / rows;
  }
  return [passes.affine(dy, x, k, u, w, m), passes.vector(dGamma), passes.vector(dBeta)];
}

for (const backendName of ['wasm', 'cpu']) {
  tf.registerKernel({ kernelName: BATCH_NORM_KERNELS.forward, backendName, kernelFunc: forwardKernel as unknown as tf.KernelFunc });
  tf.registerKernel({ kernelName: BATCH_NORM_KERNELS.backward, backendName, kernelFunc: backwardKernel as unknown as tf.KernelFunc });
}

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
  if (tf.getKernel(BATCH_NORM_KERNELS.forward, tf.getBackend())) {
    const [y, mean, variance] = tf.engine().runKernel(BATCH_NORM_KERNELS.forward, { x, gamma, beta }, { epsilon }) as tf.Tensor[];
    return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
  }
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  const y = tf.batchNorm(x, mean, variance, beta, gamma, epsilon);
  return { y, mean: mean as tf.Tensor1D, variance: variance as tf.Tensor1D };
}
