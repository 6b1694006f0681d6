/**
 * The per-sample transform pipeline and batch collation, shared by the main thread
 * (numWorkers 0) and the loader's worker threads so that both build identical batches.
 * Pipeline per sample: optional augmentation (seeded rotation and shift), ToTensor
 * (bytes to [0, 1]), Normalize(0.1307, 0.3081).
 */
import { rng } from '../util/random';
import { IMAGE_SIZE, MNIST_MEAN, MNIST_STD } from './dataset';

const PIXELS = IMAGE_SIZE * IMAGE_SIZE;

/** Byte value → normalised float, precomputed: (v/255 - mean) / std. */
const NORMALIZED = new Float32Array(256).map((_, v) => (v / 255 - MNIST_MEAN) / MNIST_STD);

export interface AugmentOptions {
  /** Largest rotation, in degrees (uniform in ±rotate). */
  rotate: number;
  /** Largest shift, in pixels (uniform in ±shift, each axis). */
  shift: number;
}

/** What a batch needs besides the sample indices: the seed stream for augmentation. */
export interface CollateContext {
  augment?: AugmentOptions | null;
  seed: number;
  epoch: number;
}

/**
 * Rotates and shifts one 28x28 image about its centre (nearest neighbour, zero fill).
 * The parameters come from rng(seed, 'augment', epoch, sample), so a sample is
 * augmented the same way whichever worker (or the main thread) builds it.
 */
export function augmentSample(src: Uint8Array, srcOffset: number, dst: Uint8Array, options: AugmentOptions,
  seed: number, epoch: number, sample: number): void {
  const random = rng(seed, 'augment', epoch, sample);
  const angle = ((random() * 2 - 1) * options.rotate * Math.PI) / 180;
  const tx = (random() * 2 - 1) * options.shift;
  const ty = (random() * 2 - 1) * options.shift;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const c = (IMAGE_SIZE - 1) / 2;
  for (let y = 0; y < IMAGE_SIZE; y++) {
    for (let x = 0; x < IMAGE_SIZE; x++) {
      // Inverse mapping: where in the source does this output pixel come from?
      const px = x - c - tx;
      const py = y - c - ty;
      const sx = Math.round(cos * px + sin * py + c);
      const sy = Math.round(-sin * px + cos * py + c);
      dst[y * IMAGE_SIZE + x] = sx >= 0 && sx < IMAGE_SIZE && sy >= 0 && sy < IMAGE_SIZE ? src[srcOffset + sy * IMAGE_SIZE + sx] : 0;
    }
  }
}

/**
 * Builds one batch: for each sample index, the transform pipeline into `out`
 * (batch x 28 x 28, NHWC with one channel) and its label into `outLabels`.
 */
export function collate(images: Uint8Array, labels: Uint8Array, indices: ArrayLike<number>,
  out: Float32Array, outLabels: Int32Array, context?: CollateContext): void {
  const count = labels.length;
  const scratch = context?.augment ? new Uint8Array(PIXELS) : undefined;
  for (let b = 0; b < indices.length; b++) {
    const sample = indices[b];
    if (!Number.isInteger(sample) || sample < 0 || sample >= count) {
      throw new RangeError(`sample index ${sample} is out of range: the data set has ${count} samples (0..${count - 1})`);
    }
    let source = images;
    let offset = sample * PIXELS;
    if (scratch && context?.augment) {
      augmentSample(images, offset, scratch, context.augment, context.seed, context.epoch, sample);
      source = scratch;
      offset = 0;
    }
    const dst = b * PIXELS;
    for (let p = 0; p < PIXELS; p++) out[dst + p] = NORMALIZED[source[offset + p]];
    outLabels[b] = labels[sample];
  }
}
