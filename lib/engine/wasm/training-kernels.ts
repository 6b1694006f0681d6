/**
 * Training kernels for the `wasm` backend.
 *
 * As shipped, tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter (a conv net cannot
 * train), and its input-gradient convolution and transposed matrix products take slow
 * paths. Stride-1 convolutions and filter gradients run on SIMD micro-kernels
 * (simd-kernels.ts); the other gradients are rewritten as fast forward kernels (Conv2D,
 * BatchMatMul without transposes) plus cheap Transpose/Reverse. Each falls back to the
 * original kernel (or a plain loop) outside the shapes it covers.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelConfig, KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs';
import { WasmBackend, channelSums, conv2dValid, convFilterGrad, kernelThreads, overreadFits, coversMaxPoolGrad, maxPoolGrad2x2 } from './simd-kernels';

const { backend_util } = tf;


type Inputs = Record<string, TensorInfo>;

function kernel(name: string): KernelFunc {
  const config = tf.getKernel(name, 'wasm');
  if (!config) throw new Error(`wasm kernel ${name} is not registered`);
  return config.kernelFunc;
}

/** Runs a kernel function (a replaced kernel's original, say) on the wasm backend. */
function run(func: KernelFunc, backend: WasmBackend, inputs: Inputs, attrs: NamedAttrMap): TensorInfo {
  return func({ inputs, attrs, backend: backend as unknown as tf.KernelBackend }) as TensorInfo;
}

/** Runs the kernel registered for wasm under `name` (this module's own where it replaced one). */
function call(name: string, backend: WasmBackend, inputs: Inputs, attrs: NamedAttrMap): TensorInfo {
  return run(kernel(name), backend, inputs, attrs);
}

function transpose(backend: WasmBackend, x: TensorInfo, perm: number[]): TensorInfo {
  return call('Transpose', backend, { x }, { perm });
}

/** Swaps the last two axes (for matrix products). */
function swapLastTwo(backend: WasmBackend, x: TensorInfo): TensorInfo {
  const perm = x.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return transpose(backend, x, perm);
}

function convInfo(xShape: number[], filterShape: number[], attrs: NamedAttrMap) {
  const { strides, pad, dataFormat, dimRoundingMode, dilations } = attrs as unknown as tf.Conv2DAttrs;
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, dilations ?? 1, pad, dimRoundingMode, false,
    backend_util.convertConv2DDataFormat(dataFormat ?? 'NHWC'),
  );
}

function isUnitStride(info: tf.backend_util.Conv2DInfo): boolean {
  return info.strideHeight === 1 && info.strideWidth === 1 &&
    info.dilationHeight === 1 && info.dilationWidth === 1 && info.dataFormat === 'channelsLast';
}

/** x padded with zeros as a convolution pads it (x itself when it pads nothing). */
function padLikeConv(backend: WasmBackend, x: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { top, bottom, left, right } = info.padInfo;
  return top || bottom || left || right
    ? call('PadV2', backend, { x }, { paddings: [[0, 0], [top, bottom], [left, right], [0, 0]], constantValue: 0 })
    : x;
}

/**
 * Stride-1 convolutions by the SIMD kernel of simd-kernels.ts (on x padded as the
 * convolution pads it): 20-40% faster than XNNPACK's on the zoo's shapes, and also what
 * the input gradient below runs on. Under 8 output channels XNNPACK's is as fast or faster.
 */
function makeConv2D(original: KernelFunc) {
  return ({ inputs, attrs, backend }: { inputs: Inputs; attrs: NamedAttrMap; backend: WasmBackend }): TensorInfo => {
    const { x, filter } = inputs;
    const info = convInfo(x.shape, filter.shape, attrs);
    if (!isUnitStride(info) || info.outChannels < 8 || !overreadFits(backend, filter)) {
      return run(original, backend, inputs, attrs);
    }
    const padded = padLikeConv(backend, x, info);
    const out = conv2dValid(backend, padded, filter);
    if (padded !== x) backend.disposeData(padded.dataId);
    return out;
  };
}

/**
 * dW[kh,kw,ci,co] = Σ_{n,y,x} x[n, y+kh-top, x+kw-left, ci] · dy[n,y,x,co] (stride 1), by
 * the SIMD kernel (simd-kernels.ts's convFilterGrad) on x padded as the convolution pads it.
 */
function conv2DBackpropFilter({ inputs, attrs, backend }: { inputs: Inputs; attrs: NamedAttrMap; backend: WasmBackend }): TensorInfo {
  const { x, dy } = inputs;
  const filterShape = (attrs as unknown as tf.Conv2DBackpropFilterAttrs).filterShape;
  const info = convInfo(x.shape, filterShape, attrs);
  if (!isUnitStride(info)) return conv2DBackpropFilterLoop(backend, x, dy, info);
  const padded = padLikeConv(backend, x, info);
  try {
    if (overreadFits(backend, padded, dy)) return convFilterGrad(backend, padded, dy);
  } finally {
    if (padded !== x) backend.disposeData(padded.dataId);
  }
  return conv2DBackpropFilterAsConv(backend, x, dy, info);
}

/**
 * The same gradient as a forward convolution of x (channels and batch swapped) by dy (batch
 * as input channels), where the SIMD kernel's reads past the end would leave the memory.
 */
function conv2DBackpropFilterAsConv(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { top, bottom, left, right } = info.padInfo;
  const xT = transpose(backend, x, [3, 1, 2, 0]); // [ci, H, W, N]
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [oh, ow, N, co]
  const r = call('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: 1, dilations: 1, dataFormat: 'NHWC',
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
  } as unknown as NamedAttrMap); // [ci, kh, kw, co]
  const dw = transpose(backend, r, [1, 2, 0, 3]);
  for (const t of [xT, dyT, r]) backend.disposeData(t.dataId);
  return dw;
}

/** Reference loop for strides/dilations the fast path does not cover. */
function conv2DBackpropFilterLoop(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  if (info.dataFormat !== 'channelsLast') throw new Error('wasm Conv2DBackpropFilter supports NHWC only');
  const xs = backend.readSync(x.dataId) as Float32Array;
  const dys = backend.readSync(dy.dataId) as Float32Array;
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth } = info;
  const out = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
  const dw = backend.typedArrayFromHeap(out);
  dw.fill(0);
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      for (let n = 0; n < batchSize; n++) {
        for (let y = 0; y < outHeight; y++) {
          const iy = y * info.strideHeight + kh * info.dilationHeight - info.padInfo.top;
          if (iy < 0 || iy >= inHeight) continue;
          for (let xo = 0; xo < outWidth; xo++) {
            const ix = xo * info.strideWidth + kw * info.dilationWidth - info.padInfo.left;
            if (ix < 0 || ix >= inWidth) continue;
            const xBase = ((n * inHeight + iy) * inWidth + ix) * inChannels;
            const dyBase = ((n * outHeight + y) * outWidth + xo) * outChannels;
            for (let ci = 0; ci < inChannels; ci++) {
              const xv = xs[xBase + ci];
              const wBase = ((kh * filterWidth + kw) * inChannels + ci) * outChannels;
              for (let co = 0; co < outChannels; co++) dw[wBase + co] += xv * dys[dyBase + co];
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * dx = full convolution of dy with the spatially flipped filter, in/out channels swapped
 * (stride 1). The padding becomes k-1-pad on each side.
 */
function makeConv2DBackpropInput(original: KernelFunc) {
  return ({ inputs, attrs, backend }: { inputs: Inputs; attrs: NamedAttrMap; backend: WasmBackend }): TensorInfo => {
    const { dy, filter } = inputs;
    const inputShape = (attrs as unknown as tf.Conv2DBackpropInputAttrs).inputShape;
    const info = convInfo(inputShape, filter.shape, attrs);
    const { top, bottom, left, right } = info.padInfo;
    const kh = info.filterHeight;
    const kw = info.filterWidth;
    const pads = [kh - 1 - top, kh - 1 - bottom, kw - 1 - left, kw - 1 - right];
    if (!isUnitStride(info) || pads.some((p) => p < 0)) {
      return run(original, backend, inputs, attrs);
    }
    if (info.outHeight === 1 && info.outWidth === 1 && top + bottom + left + right === 0) {
      // A filter as large as its input (an output layer): dx = dy [N, co] · W [kh·kw·ci, co]ᵀ,
      // not a full convolution over a (2k−1)² padded dy that is almost all zeros.
      const k = kh * kw * info.inChannels;
      const a = call('Reshape', backend, { x: dy }, { shape: [1, info.batchSize, info.outChannels] });
      const b = call('Reshape', backend, { x: filter }, { shape: [1, k, info.outChannels] });
      const product = call('BatchMatMul', backend, { a, b }, { transposeA: false, transposeB: true });
      const dx = call('Reshape', backend, { x: product }, { shape: inputShape });
      for (const t of [a, b, product]) backend.disposeData(t.dataId);
      return dx;
    }
    const flipped = call('Reverse', backend, { x: filter }, { dims: [0, 1] });
    const w = transpose(backend, flipped, [0, 1, 3, 2]); // [kh, kw, co, ci]
    const dx = call('Conv2D', backend, { x: dy, filter: w }, {
      strides: 1, dilations: 1, dataFormat: 'NHWC',
      pad: [[0, 0], [pads[0], pads[1]], [pads[2], pads[3]], [0, 0]],
    } as unknown as NamedAttrMap);
    for (const t of [flipped, w]) backend.disposeData(t.dataId);
    return dx;
  };
}

const OWN_PRODUCT_MAX_B_BYTES = 4 << 20;
const OWN_PRODUCT_MIN_ROWS = 1024;

/**
 * A·B (no transposes, one matrix each, with a fused bias and ReLU if any) split across the
 * kernel threads by rows of A, as a 1x1 convolution of A's rows by B on the convolution
 * kernel (XNNPACK's product runs on one thread). Undefined where the threads are off or
 * the product is not of that form: the caller then runs tfjs's kernel.
 */
function matMulOnKernelThreads(backend: WasmBackend, inputs: Inputs, attrs: NamedAttrMap, a: TensorInfo, b: TensorInfo): TensorInfo | undefined {
  const matrices = (t: TensorInfo) => t.shape.slice(0, -2).reduce((x, y) => x * y, 1);
  if (kernelThreads() <= 1 || a.shape.length < 2 || b.shape.length < 2 || matrices(a) !== 1 || matrices(b) !== 1) return undefined;
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || !overreadFits(backend, b)) return undefined;
  const { bias, preluActivationWeights } = inputs;
  const activation = (attrs as { activation?: string }).activation ?? 'linear';
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  // The kernel reads all of B once per 4 rows of A, down B's columns (a page apart in a wide B):
  // past a cache's worth of B, few rows (the Net's fc1 forward: 64 rows by a 12.8 MB B) run
  // slower split than on XNNPACK's packed product on one thread (measured 20 vs 12 ms on 2).
  if (4 * k * n > OWN_PRODUCT_MAX_B_BYTES && m < OWN_PRODUCT_MIN_ROWS) return undefined;
  if (preluActivationWeights || (activation !== 'linear' && activation !== 'relu') || (bias && tf.util.sizeFromShape(bias.shape) !== n)) return undefined;
  const product = conv2dValid(backend, { dataId: a.dataId, shape: [m, 1, 1, k], dtype: 'float32' }, { dataId: b.dataId, shape: [1, 1, k, n], dtype: 'float32' });
  const rank = Math.max(a.shape.length, b.shape.length); // tfjs's product keeps the inputs' rank
  let out: TensorInfo = { dataId: product.dataId, shape: [...new Array<number>(rank - 2).fill(1), m, n], dtype: 'float32' };
  if (bias) {
    const sum = call('Add', backend, { a: out, b: bias }, {});
    backend.disposeData(out.dataId);
    out = sum;
  }
  if (activation === 'relu') {
    const relu = call('Relu', backend, { x: out }, {});
    backend.disposeData(out.dataId);
    out = relu;
  }
  return out;
}

/**
 * Matrix products with transposed operands, rewritten as products without transposes.
 * A·Bᵀ is either A·(Bᵀ) (transpose B) or (B·Aᵀ)ᵀ (transpose A and the result): the
 * cheaper of the two is used, as a [64,1024]·[3136,1024]ᵀ product would otherwise
 * transpose a 3.2M-element weight matrix every step.
 */
function makeTransposeFirst(original: KernelFunc) {
  const untransposed = (backend: WasmBackend, inputs: Inputs, attrs: NamedAttrMap, a: TensorInfo, b: TensorInfo) =>
    matMulOnKernelThreads(backend, inputs, attrs, a, b) ??
    run(original, backend, { ...inputs, a, b }, { ...attrs, transposeA: false, transposeB: false });
  return ({ inputs, attrs, backend }: { inputs: Inputs; attrs: NamedAttrMap; backend: WasmBackend }): TensorInfo => {
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    const { a, b } = inputs;
    if (!transposeA && !transposeB) return untransposed(backend, inputs, attrs, a, b);
    const size = (t: TensorInfo) => t.shape.reduce((x, y) => x * y, 1);
    const fused = Object.keys(inputs).length > 2; // bias / prelu inputs apply to the un-swapped result
    const temps: TensorInfo[] = [];
    let out: TensorInfo;
    if (transposeB && !transposeA && !fused && a.shape.length === b.shape.length) {
      // Elements transposed: m·k + m·n by the swapped form, n·k by transposing B.
      const r = a.shape.length;
      const [m, k, n] = [a.shape[r - 2], a.shape[r - 1], b.shape[r - 2]];
      if (m * k + m * n < n * k) {
        const aT = swapLastTwo(backend, a);
        const bAT = untransposed(backend, inputs, attrs, b, aT); // [n, m]
        out = swapLastTwo(backend, bAT);
        for (const t of [aT, bAT]) backend.disposeData(t.dataId);
        return out;
      }
    }
    const a2 = transposeA ? swapLastTwo(backend, a) : a;
    const b2 = transposeB ? swapLastTwo(backend, b) : b;
    if (transposeA) temps.push(a2);
    if (transposeB) temps.push(b2);
    out = untransposed(backend, inputs, attrs, a2, b2);
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  };
}

/**
 * MaxPoolGrad as one pass over the wasm heap: each output's gradient goes to the first
 * maximum of its window (the cpu backend's rule). 2x2/2 pools go to the SIMD kernel of
 * lib/engine/wasm/simd-kernels.ts; this loop covers every other pooling config (NHWC).
 */
function maxPoolGrad({ inputs, attrs, backend }: { inputs: Inputs; attrs: NamedAttrMap; backend: WasmBackend }): TensorInfo {
  const { dy, input } = inputs;
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolGradAttrs;
  const info = backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const out = backend.makeOutput(input.shape, 'float32');
  if (coversMaxPoolGrad(input.shape, info)) {
    maxPoolGrad2x2(backend, input, dy, out); // the models' pools: one SIMD pass
    return out;
  }
  // Views taken after makeOutput: an allocation that grows the wasm memory detaches older ones.
  const xs = backend.typedArrayFromHeap(input);
  const dys = backend.typedArrayFromHeap(dy);
  const dx = backend.typedArrayFromHeap(out);
  dx.fill(0);
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const { top, left } = info.padInfo;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - left;
        const dyBase = ((n * outHeight + oy) * outWidth + ox) * C;
        for (let c = 0; c < C; c++) {
          let best = -Infinity;
          let at = -1;
          for (let fy = 0; fy < filterHeight; fy++) {
            const y = y0 + fy;
            if (y < 0 || y >= inHeight) continue;
            for (let fx = 0; fx < filterWidth; fx++) {
              const x = x0 + fx;
              if (x < 0 || x >= inWidth) continue;
              const i = ((n * inHeight + y) * inWidth + x) * C + c;
              if (xs[i] > best) { best = xs[i]; at = i; }
            }
          }
          if (at >= 0) dx[at] += dys[dyBase + c];
        }
      }
    }
  }
  return out;
}

/**
 * Identity, and Cast to the same dtype, sharing the input's data (reference counted, as
 * the cpu backend and the wasm backend's own Reshape do) instead of copying it: tfjs clones
 * every tensor a gradient keeps (about 130 a step in a batch-norm model) and tf.layers casts
 * every layer's input to float32, so the copies were a few ms a step.
 */
function makeSharing(original: KernelFunc, sameType: (x: TensorInfo, attrs: NamedAttrMap) => boolean) {
  return ({ inputs, attrs, backend }: { inputs: Inputs; attrs: NamedAttrMap; backend: WasmBackend }): TensorInfo => {
    const { x } = inputs;
    if (x.dtype === 'string' || !sameType(x, attrs)) return run(original, backend, inputs, attrs);
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * Sum over every axis but the last (a bias's gradient: tfjs's Add gradient sums dy over
 * [N, H, W]) as one pass of per-channel float64 sums, not the stock kernel's transpose of
 * the whole tensor followed by row sums. Other reductions go to the stock kernel.
 */
function makeSum(original: KernelFunc) {
  return ({ inputs, attrs, backend }: { inputs: Inputs; attrs: NamedAttrMap; backend: WasmBackend }): TensorInfo => {
    const { x } = inputs;
    const { axis, keepDims } = attrs as unknown as tf.SumAttrs;
    const r = x.shape.length;
    const axes = tf.util.parseAxisParam(axis, x.shape).sort((a, b) => a - b);
    if (x.dtype !== 'float32' || r < 2 || axes.length !== r - 1 || axes.some((a, i) => a !== i) || x.shape[r - 1] === 0) {
      return run(original, backend, inputs, attrs);
    }
    const C = x.shape[r - 1];
    const zeros = new Float32Array(C);
    const [sums] = channelSums(backend, x, x, zeros, zeros);
    const out = backend.makeOutput(keepDims ? [...x.shape.slice(0, -1).map(() => 1), C] : [C], 'float32');
    backend.typedArrayFromHeap(out).set(sums);
    return out;
  };
}

let registered = false;

/** The kernels this module installs or replaces (tests cover each). */
export const WASM_TRAINING_KERNELS = ['Identity', 'Cast', 'Sum', 'Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'BatchMatMul', '_FusedMatMul', 'MaxPoolGrad'] as const;

/** Registers the training kernels for 'wasm' (idempotent). Call before tf.setBackend('wasm'). */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  const replace = (name: string, make: (original: KernelFunc) => KernelFunc) => {
    const original = tf.getKernel(name, 'wasm');
    if (!original) throw new Error(`wasm kernel ${name} is missing: tfjs-backend-wasm version mismatch?`);
    tf.unregisterKernel(name, 'wasm');
    const config: KernelConfig = { ...original, kernelFunc: make(original.kernelFunc) };
    tf.registerKernel(config);
  };
  if (!tf.getKernel('Conv2DBackpropFilter', 'wasm')) {
    tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2DBackpropFilter as unknown as KernelFunc });
  }
  replace('Identity', (o) => makeSharing(o, () => true) as unknown as KernelFunc);
  replace('Cast', (o) => makeSharing(o, (x, attrs) => (attrs as unknown as tf.CastAttrs).dtype === x.dtype) as unknown as KernelFunc);
  replace('Sum', (o) => makeSum(o) as unknown as KernelFunc);
  replace('Conv2D', (o) => makeConv2D(o) as unknown as KernelFunc);
  replace('Conv2DBackpropInput', (o) => makeConv2DBackpropInput(o) as unknown as KernelFunc);
  replace('BatchMatMul', (o) => makeTransposeFirst(o) as unknown as KernelFunc);
  replace('_FusedMatMul', (o) => makeTransposeFirst(o) as unknown as KernelFunc);
  replace('MaxPoolGrad', () => maxPoolGrad as unknown as KernelFunc);
}
