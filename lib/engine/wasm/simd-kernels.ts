/**
 * Fused kernels for the wasm backend, written in WebAssembly text
 * (lib/wasm/*.wat, compiled by scripts/build.ts) and run on the backend's own memory:
 * the module imports tfjs's WebAssembly.Memory, so it reads and writes tensors in place,
 * by byte offset, with SIMD. Used where a chain of tensor ops would read and write a
 * large weight many times (the optimizer step: about 30 ms of tensor ops for the Net,
 * 5 ms fused) and for the max-pooling gradient (about 15 ms a step as a JS loop).
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
  readSync(dataId: object): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** A view of a tensor's data in the wasm memory (detached when the memory grows). */
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

interface KernelExports {
  adadelta(p: number, g: number, s: number, a: number, pOut: number, sOut: number, aOut: number,
    n: number, rho: number, eps: number, lr: number): void;
  maxpool_grad_2x2(x: number, dy: number, dx: number, n: number, h: number, w: number, c: number): void;
}

let compiled: WebAssembly.Module | undefined;
const instances = new WeakMap<WebAssembly.Memory, KernelExports>();

function memoryOf(backend: WasmBackend): WebAssembly.Memory {
  const memory = Object.values(backend.wasm.asm).find((v) => v instanceof WebAssembly.Memory);
  if (!memory) throw new Error('the wasm backend exports no memory: tfjs-backend-wasm version mismatch?');
  return memory as WebAssembly.Memory;
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

/** Whether maxPoolGrad2x2 covers a pooling: 2x2, stride 2, no padding, even sides, channels a multiple of 4. */
export function coversMaxPoolGrad(shape: number[], info: { filterHeight: number; filterWidth: number; strideHeight: number; strideWidth: number;
  padInfo: { top: number; left: number; bottom: number; right: number } }): boolean {
  const [, h, w, c] = shape;
  const p = info.padInfo;
  return info.filterHeight === 2 && info.filterWidth === 2 && info.strideHeight === 2 && info.strideWidth === 2 &&
    p.top === 0 && p.left === 0 && p.bottom === 0 && p.right === 0 && h % 2 === 0 && w % 2 === 0 && c % 4 === 0;
}

/** The 2x2/2 max-pooling gradient into `dx` (all of it written), from input `x` and `dy`. */
export function maxPoolGrad2x2(backend: WasmBackend, x: tf.TensorInfo, dy: tf.TensorInfo, dx: tf.TensorInfo): void {
  const at = (t: tf.TensorInfo) => addressOf(backend, t);
  const [n, h, w, c] = x.shape;
  kernels(backend).maxpool_grad_2x2(at(x), at(dy), at(dx), n, h, w, c);
}
