/**
 * Dropout with its mask drawn in one pass. tf.dropout fills a uniform tensor through
 * seedrandom (one JavaScript call per value: the largest part of a gap-8k step outside
 * the kernels) and then compares, floors and divides it with four tensor ops. Here a
 * small seeded generator (mulberry32) writes the scaled mask straight into the backend's
 * memory (the `DropoutMask` kernel: four draws at a time with SIMD on wasm, the same stream
 * one at a time on cpu), and dropout is one Multiply by it, whose gradient
 * is one Multiply too; on webgpu, one dispatch draws and applies it (webgpu/dropout-kernel.ts).
 * The same seed gives the same mask on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import { seededDropoutOnWebgpu } from './webgpu/dropout-kernel';
import { dropoutMaskOnWasm, WasmBackend } from './wasm/simd-kernels';

export const DROPOUT_MASK_KERNEL = 'DropoutMask';

/** Fills `mask` with 1/(1−rate) where a uniform 32-bit draw is at or above rate·2³², else 0. */
export function fillDropoutMask(mask: Float32Array, rate: number, seed: number): void {
  const { threshold, keep } = maskParameters(rate);
  let state = seed >>> 0;
  for (let i = 0; i < mask.length; i++) {
    // mulberry32 (Tommy Ettinger): 32-bit state, period 2³², passes PractRand to 32 GB.
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const draw = (t ^ (t >>> 14)) >>> 0;
    mask[i] = draw >= threshold ? keep : 0;
  }
}

/** The threshold of a uniform 32-bit draw under which a value is dropped, and the scale of the rest. */
function maskParameters(rate: number): { threshold: number; keep: number } {
  return { threshold: Math.floor(rate * 0x100000000), keep: Math.fround(1 / (1 - rate)) };
}

/** The mask's values, one at a time (cpu, and backends without the kernel). */
function maskValues(shape: number[], rate: number, seed: number): Float32Array {
  const mask = new Float32Array(tf.util.sizeFromShape(shape));
  fillDropoutMask(mask, rate, seed);
  return mask;
}

type KernelArgs = { attrs: tf.NamedAttrMap; backend: tf.KernelBackend };

function maskKernel({ attrs, backend }: KernelArgs): tf.TensorInfo {
  const shape = attrs.shape as number[];
  const { rate, seed } = attrs as unknown as { rate: number; seed: number };
  if (tf.getBackend() === 'wasm') {
    const wasm = backend as unknown as WasmBackend;
    const out = wasm.makeOutput(shape, 'float32');
    const { threshold, keep } = maskParameters(rate);
    dropoutMaskOnWasm(wasm, out, seed, threshold, keep); // SIMD, in place in the wasm memory
    return out;
  }
  return (backend as unknown as { makeTensorInfo(s: number[], d: 'float32', v: Float32Array): tf.TensorInfo })
    .makeTensorInfo(shape, 'float32', maskValues(shape, rate, seed));
}

for (const backendName of ['wasm', 'cpu']) {
  tf.registerKernel({ kernelName: DROPOUT_MASK_KERNEL, backendName, kernelFunc: maskKernel as unknown as tf.KernelFunc });
}

/** The scaled keep-mask of a dropout with this rate and seed, shaped like `shape`. */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  if (tf.getKernel(DROPOUT_MASK_KERNEL, tf.getBackend())) {
    return tf.engine().runKernel(DROPOUT_MASK_KERNEL, {}, { shape, rate, seed } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  return tf.tensor(maskValues(shape, rate, seed), shape, 'float32');
}

/** x with each value zeroed with probability `rate` and the rest scaled by 1/(1−rate). */
export function seededDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  if (tf.getBackend() === 'webgpu' && x.dtype === 'float32') return seededDropoutOnWebgpu(x, rate, seed); // the mask drawn on the GPU
  return tf.tidy(() => tf.mul(x, dropoutMask(x.shape, rate, seed)));
}
