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
import { splitRows } from '../allreduce';
import { KernelPool, PoolKernel } from './kernel-pool';

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

/** The kernels compiled for an unshared memory and for a shared one (simd-kernels-shared.wasm, built from the same text). */
const compiled = new Map<boolean, WebAssembly.Module>();
const instances = new WeakMap<WebAssembly.Memory, KernelExports>();

export function kernelModule(shared: boolean): WebAssembly.Module {
  let module = compiled.get(shared);
  if (!module) {
    module = new WebAssembly.Module(fs.readFileSync(path.join(__dirname, shared ? 'simd-kernels-shared.wasm' : 'simd-kernels.wasm')));
    compiled.set(shared, module);
  }
  return module;
}

const memories = new WeakMap<WasmBackend, WebAssembly.Memory>();

export function memoryOf(backend: WasmBackend): WebAssembly.Memory {
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
    const module = kernelModule(memory.buffer instanceof SharedArrayBuffer);
    exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
    instances.set(memory, exports);
  }
  return exports;
}

let pool: { memory: WebAssembly.Memory; pool: KernelPool } | undefined;

/**
 * Splits the convolutions of the current wasm backend across `threads` threads (this one
 * included) from now on; 1 goes back to this thread alone. Needs the backend on a shared
 * memory (shared-memory.ts): whether it is, `kernelThreadsAvailable` says.
 */
export async function setKernelThreads(threads: number): Promise<void> {
  if (pool) {
    const old = pool.pool;
    pool = undefined;
    await old.close();
  }
  if (threads <= 1) return;
  const backend = tf.backend() as unknown as WasmBackend;
  const memory = memoryOf(backend);
  const k = kernels(backend) as unknown as Record<PoolKernel, (...args: number[]) => void>;
  pool = { memory, pool: await KernelPool.start(threads, memory, kernelModule(true), (kernel, args) => k[kernel](...args)) };
}

/** Threads the convolutions are split across (1: this thread alone). */
export function kernelThreads(): number {
  return pool && !paused ? pool.pool.threads : 1;
}

let paused = false;

/** Runs `work` on this thread alone, the kernel threads kept (a benchmark's one-thread figure beside theirs). */
export async function onThisThreadAlone<T>(work: () => Promise<T>): Promise<T> {
  const was = paused;
  paused = true;
  try {
    return await work();
  } finally {
    paused = was;
  }
}

/** Whether the current backend is wasm on a shared memory, so that kernel threads can work on it. */
export function kernelThreadsAvailable(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  return memoryOf(tf.backend() as unknown as WasmBackend).buffer instanceof SharedArrayBuffer;
}

/** Fewest multiply-adds worth waking the kernel threads for (a wake-up costs tens of microseconds). */
const POOL_MIN_WORK = 1 << 21;

/** The pool for a backend's memory where a job of `work` multiply-adds over n images is worth splitting. */
function poolFor(backend: WasmBackend, n: number, work: number): KernelPool | undefined {
  return pool && !paused && n > 1 && work >= POOL_MIN_WORK && pool.memory === memoryOf(backend) ? pool.pool : undefined;
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
  const size = kh * L4 * cols;
  const threads = poolFor(backend, n, n * oh * ow * co * kh * kw * ci);
  // Images are split across the kernel threads, each summing into a scratch of its own.
  const shares = threads ? splitRows(n, Math.min(n, threads.threads)) : [[0, n]];
  const scratch = backend.makeOutput([shares.length * size], 'float32');
  backend.typedArrayFromHeap(scratch).fill(0);
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  const rows = shares.map(([first, count], i) => [at(x) + 4 * first * h * w * ci, at(dy) + 4 * first * oh * ow * co,
    at(scratch) + 4 * i * size, count, h, w, ci, oh, ow, co, kh, kw, cols]);
  if (threads) threads.run('conv_filter_grad', rows);
  else kernels(backend).conv_filter_grad(...(rows[0] as Parameters<KernelExports['conv_filter_grad']>));
  const out = backend.makeOutput([kh, kw, ci, co], 'float32');
  const padded = backend.typedArrayFromHeap(scratch);
  for (let i = 1; i < shares.length; i++) { // the threads' sums in thread order: the same result for the same count
    const part = padded.subarray(i * size, (i + 1) * size);
    for (let j = 0; j < size; j++) padded[j] += part[j];
  }
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
 * [n, h − kh + 1, w − kw + 1, co], by the SIMD kernel conv2d_valid; on kernel threads, each
 * thread takes some of the images.
 */
export function conv2dValid(backend: WasmBackend, x: tf.TensorInfo, filter: tf.TensorInfo): tf.TensorInfo {
  const [n, h, w, ci] = x.shape;
  const [kh, kw, , co] = filter.shape;
  const oh = h - kh + 1;
  const ow = w - kw + 1;
  const out = backend.makeOutput([n, oh, ow, co], 'float32');
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  const threads = poolFor(backend, n, n * oh * ow * co * kh * kw * ci);
  if (!threads) {
    kernels(backend).conv2d_valid(at(x), at(filter), at(out), n, h, w, ci, oh, ow, co, kh, kw);
    return out;
  }
  // Images are split across the kernel threads: each writes its own rows of out.
  threads.run('conv2d_valid', splitRows(n, Math.min(n, threads.threads)).map(([first, count]) =>
    [at(x) + 4 * first * h * w * ci, at(filter), at(out) + 4 * first * oh * ow * co, count, h, w, ci, oh, ow, co, kh, kw]));
  return out;
}
