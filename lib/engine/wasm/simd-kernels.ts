/**
 * Fused kernels for the wasm backend, written in WebAssembly text
 * (lib/engine/wasm/*.wat, compiled by scripts/build.ts) and run on the backend's own memory:
 * the module imports tfjs's WebAssembly.Memory, so it reads and writes tensors in place,
 * by byte offset, with SIMD. Used where a chain of tensor ops would read and write a
 * large weight many times (the optimizer step: about 30 ms of tensor ops for the Net,
 * 5 ms fused), for the max-pooling gradient (about 15 ms a step as a JS loop), for batch
 * norm's per-channel passes (engine/batch-norm.ts) and for the convolutions and their
 * filter gradients (matrix-product micro-kernels reading the tensors in place).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

// The WebAssembly JS API, which Node has and TypeScript's ES2022 library does not declare.
declare namespace WebAssembly {
  class Memory { readonly buffer: ArrayBuffer }
  class Module { constructor(bytes: Uint8Array) }
  class Instance {
    constructor(module: Module, imports: Record<string, Record<string, unknown>>);
    readonly exports: Record<string, unknown>;
  }
}

/** The parts of tfjs-backend-wasm's BackendWasm that this project's kernels use. */
export interface WasmBackend {
  wasm: { asm: Record<string, unknown> };
  disposeData(dataId: object): boolean;
  incRef(dataId: object): void;
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's data in the wasm memory (detached when the memory grows). */
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

interface KernelExports {
  adadelta(p: number, g: number, s: number, a: number, pOut: number, sOut: number, aOut: number,
    n: number, rho: number, eps: number, lr: number): void;
  maxpool_grad_2x2(x: number, dy: number, dx: number, n: number, h: number, w: number, c: number): void;
  channel_sums(a: number, b: number, sa: number, sb: number, rows: number, C: number, acc: number): void;
  channel_affine(a: number, b: number, out: number, rows: number, C: number, p: number, q: number, r: number, sb: number): void;
  dropout_mask(out: number, n: number, seed: number, threshold: number, keep: number): void;
  conv_filter_grad(x: number, dy: number, dw: number, n: number, h: number, w: number, ci: number,
    oh: number, ow: number, co: number, kh: number, kw: number, cols: number): void;
  conv2d_valid(x: number, w: number, out: number, n: number, h: number, wd: number, ci: number,
    oh: number, ow: number, co: number, kh: number, kw: number): void;
}

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, KernelExports>();

const memories = new WeakMap<WasmBackend, WebAssembly.Memory>();

function memoryOf(backend: WasmBackend): WebAssembly.Memory {
  let memory = memories.get(backend); // looked up once: the exports are hundreds of entries
  if (!memory) {
    memory = Object.values(backend.wasm.asm).find((v) => v instanceof WebAssembly.Memory) as WebAssembly.Memory | undefined;
    if (!memory) throw new Error('the wasm backend exports no memory: tfjs-backend-wasm version mismatch?');
    memories.set(backend, memory);
  }
  return memory;
}

/** A tensor's byte offset in the wasm memory: the pointer the kernels take. */
function addressOf(backend: WasmBackend, t: tf.TensorInfo): number {
  return backend.typedArrayFromHeap(t).byteOffset;
}

function kernels(backend: WasmBackend): KernelExports {
  const memory = memoryOf(backend);
  let exports = instances.get(memory);
  if (!exports) {
    compiled ??= new WebAssembly.Module(fs.readFileSync(path.join(__dirname, 'simd-kernels.wasm')));
    exports = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as KernelExports;
    instances.set(memory, exports);
  }
  return exports;
}

/**
 * One Adadelta step for one weight on the wasm backend (torch.optim.Adadelta's
 * arithmetic). The new weight and slots go to fresh tensors that the variables are then
 * pointed at, so a tensor sharing a variable's data is never changed under it.
 */
export function adadeltaOnWasm(value: tf.Variable, gradient: tf.Tensor, squareAvg: tf.Variable, accDelta: tf.Variable,
  rho: number, epsilon: number, lr: number): void {
  const backend = tf.backend() as unknown as WasmBackend;
  const k = kernels(backend);
  const outs = [value, squareAvg, accDelta].map((v) => backend.makeOutput(v.shape, 'float32'));
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  k.adadelta(at(value), at(gradient), at(squareAvg), at(accDelta), at(outs[0]), at(outs[1]), at(outs[2]),
    value.size, rho, epsilon, lr);
  const engine = tf.engine();
  [value, squareAvg, accDelta].forEach((v, i) => {
    const t = engine.makeTensorFromTensorInfo(outs[i], backend as unknown as tf.KernelBackend);
    v.assign(t);
    t.dispose();
  });
}

/** Whether maxPoolGrad2x2 covers a pooling: 2x2, stride 2, no padding (odd sides: the last row or column is left out). */
export function coversMaxPoolGrad(shape: number[], info: { filterHeight: number; filterWidth: number; strideHeight: number; strideWidth: number;
  padInfo: { top: number; left: number; bottom: number; right: number } }): boolean {
  const [, h, w, c] = shape;
  const p = info.padInfo;
  return info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 && info.strideWidth === 2 &&
    p.top === 0 && p.left === 0 && p.bottom === 0 && p.right === 0 && h > 0 && w > 0 && c > 0;
}

/** The 2x2/2 max-pooling gradient into `dx` (all of it written), from input `x` and `dy`. */
export function maxPoolGrad2x2(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, dx: tf.TensorInfo): void {
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  const [n, h, w, c] = x.shape;
  if (h % 2 || w % 2) backend.typedArrayFromHeap(dx).fill(0); // the row or column no window covers
  kernels(backend).maxpool_grad_2x2(at(x), at(dy), at(dx), n, h, w, c);
}

/**
 * Per-channel float64 sums over the rows of two channels-last tensors of the same shape,
 * each shifted per channel: [Σ(a − shiftA), Σ(a − shiftA)·(b − shiftB)], each of C values
 * (C = the last axis, the length of the shifts).
 */
export function channelSums(backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo,
  shiftA: Float32Array, shiftB: Float32Array): [Float64Array, Float64Array] {
  const C = shiftA.length;
  const rows = tf.util.sizeFromShape(a.shape) / C;
  const scratch = backend.makeOutput([6 * C], 'float32'); // 2·C float64 sums, then the two shifts
  const view = backend.typedArrayFromHeap(scratch);
  view.set(shiftA, 4 * C);
  view.set(shiftB, 5 * C);
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  const base = at(scratch);
  kernels(backend).channel_sums(at(a), at(b), base + 16 * C, base + 20 * C, rows, C, base);
  const sums = backend.typedArrayFromHeap(scratch);
  const acc = new Float64Array(sums.buffer.slice(sums.byteOffset, sums.byteOffset + 16 * C));
  backend.disposeData(scratch.dataId);
  return [acc.subarray(0, C), acc.subarray(C)];
}

/** out = a·p[c] + (b − shiftB[c])·q[c] + r[c] per channel (float32), for channels-last tensors of out's shape. */
export function channelAffine(backend: WasmBackend, a: tf.TensorInfo, b: tf.TensorInfo, out: tf.TensorInfo,
  p: Float32Array, q: Float32Array, r: Float32Array, shiftB: Float32Array): void {
  const C = p.length;
  const rows = tf.util.sizeFromShape(out.shape) / C;
  const scratch = backend.makeOutput([4 * C], 'float32');
  const coefficients = backend.typedArrayFromHeap(scratch);
  [p, q, r, shiftB].forEach((values, i) => coefficients.set(values, i * C));
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  const base = at(scratch);
  kernels(backend).channel_affine(at(a), at(b), at(out), rows, C, base, base + 4 * C, base + 8 * C, base + 12 * C);
  backend.disposeData(scratch.dataId);
}

/** Fills `out` with a scaled dropout mask: the stream of lib/engine/dropout.ts's fillDropoutMask, four draws at a time. */
export function dropoutMaskOnWasm(backend: WasmBackend, out: tf.TensorInfo, seed: number, threshold: number, keep: number): void {
  kernels(backend).dropout_mask(addressOf(backend, out), tf.util.sizeFromShape(out.shape), seed | 0, threshold | 0, keep);
}

/** Bytes the convolution kernels may read past the end of x, dy or a filter (into lanes they discard). */
const OVERREAD_BYTES = 12;

/** Whether the convolution kernels' reads past the ends of these tensors stay inside the wasm memory. */
export function overreadFits(backend: WasmBackend, ...tensors: tf.TensorInfo[]): boolean {
  const limit = memoryOf(backend).buffer.byteLength;
  return tensors.every((t) => addressOf(backend, t) + 4 * tf.util.sizeFromShape(t.shape) + OVERREAD_BYTES <= limit);
}

/**
 * The filter gradient of a valid, stride-1 NHWC convolution of x [n, h, w, ci] giving
 * dy [n, oh, ow, co]: dw [kh, kw, ci, co] (kh = h − oh + 1, kw = w − ow + 1), by the SIMD
 * kernel conv_filter_grad into a padded scratch, then the valid rows and columns copied out.
 */
export function convFilterGrad(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo): tf.TensorInfo {
  const [n, h, w, ci] = x.shape;
  const [, oh, ow, co] = dy.shape;
  const kh = h - oh + 1;
  const kw = w - ow + 1;
  const L = kw * ci;
  const L4 = Math.ceil(L / 4) * 4;
  const cols = Math.ceil(co / 8) * 8;
  const scratch = backend.makeOutput([kh * L4 * cols], 'float32');
  backend.typedArrayFromHeap(scratch).fill(0);
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  kernels(backend).conv_filter_grad(at(x), at(dy), at(scratch), n, h, w, ci, oh, ow, co, kh, kw, cols);
  const out = backend.makeOutput([kh, kw, ci, co], 'float32');
  const padded = backend.typedArrayFromHeap(scratch);
  const dw = backend.typedArrayFromHeap(out);
  for (let a = 0; a < kh; a++) {
    for (let t = 0; t < L; t++) {
      const from = (a * L4 + t) * cols;
      dw.set(padded.subarray(from, from + co), (a * L + t) * co);
    }
  }
  backend.disposeData(scratch.dataId);
  return out;
}

/**
 * A valid, stride-1 NHWC convolution of x [n, h, w, ci] by filter [kh, kw, ci, co] into
 * [n, h − kh + 1, w − kw + 1, co], by the SIMD kernel conv2d_valid.
 */
export function conv2dValid(backend: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo): tf.TensorInfo {
  const [n, h, w, ci] = x.shape;
  const [kh, kw, , co] = filter.shape;
  const oh = h - kh + 1;
  const ow = w - kw + 1;
  const out = backend.makeOutput([n, oh, ow, co], 'float32');
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  kernels(backend).conv2d_valid(at(x), at(filter), at(out), n, h, w, ci, oh, ow, co, kh, kw);
  return out;
}
