/**
 * Dropout with its mask drawn in one pass. tf.dropout fills a uniform tensor through
 * seedrandom (one JavaScript call per value: the largest part of a gap-8k step outside
 * the kernels) and then compares, floors and divides it with four tensor ops. Here a
 * small seeded generator (mulberry32) writes the scaled mask straight into the backend's
 * memory (the `DropoutMask` kernel), and dropout is one Multiply by it, whose gradient
 * is one Multiply too. The same seed gives the same mask on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import { hasJsKernel, registerJsKernel } from './js-kernel';

export const DROPOUT_MASK_KERNEL = 'DropoutMask';

/** Fills `mask` with 1/(1−rate) where a uniform 32-bit draw is at or above rate·2³², else 0. */
export function fillDropoutMask(mask: Float32Array, rate: number, seed: number): void {
  const threshold = Math.floor(rate * 0x100000000);
  const keep = 1 / (1 - rate);
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

registerJsKernel(DROPOUT_MASK_KERNEL, [], ({ attrs }) => [attrs.shape as number[]],
  (_, [mask], { attrs }) => fillDropoutMask(mask, attrs.rate as number, attrs.seed as number));

/** The scaled keep-mask of a dropout with this rate and seed, shaped like `shape`. */
export function dropoutMask(shape: number[], rate: number, seed: number): tf.Tensor {
  if (hasJsKernel(DROPOUT_MASK_KERNEL)) {
    return tf.engine().runKernel(DROPOUT_MASK_KERNEL, {}, { shape, rate, seed } as unknown as tf.NamedAttrMap) as tf.Tensor;
  }
  const mask = new Float32Array(shape.reduce((a, b) => a * b, 1));
  fillDropoutMask(mask, rate, seed);
  return tf.tensor(mask, shape, 'float32');
}

/** x with each value zeroed with probability `rate` and the rest scaled by 1/(1−rate). */
export function seededDropout(x: tf.Tensor, rate: number, seed: number): tf.Tensor {
  return tf.tidy(() => tf.mul(x, dropoutMask(x.shape, rate, seed)));
}
