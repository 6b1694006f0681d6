/**
 * The per-sample transform pipeline and batch collation, shared by the main thread
 * (numWorkers 0) and the loader's worker threads so both build identical batches.
 */
import { IMAGE_SIZE, MNIST_MEAN, MNIST_STD } from './mnist';

const PIXELS = IMAGE_SIZE * IMAGE_SIZE;

/** Byte value → normalised float, precomputed: (v/255 - mean) / std. */
const NORMALIZED = new Float32Array(256).map((_, v) => (v / 255 - MNIST_MEAN) / MNIST_STD);

/**
 * Builds one batch: for each sample index, ToTensor + Normalize into `out`
 * (batch x 28 x 28, NHWC with one channel) and its label into `outLabels`.
 */
export function collate(images: Uint8Array, labels: Uint8Array, indices: ArrayLike<number>,
  out: Float32Array, outLabels: Int32Array): void {
  for (let b = 0; b < indices.length; b++) {
    const src = indices[b] * PIXELS;
    const dst = b * PIXELS;
    for (let p = 0; p < PIXELS; p++) out[dst + p] = NORMALIZED[images[src + p]];
    outLabels[b] = labels[indices[b]];
  }
}
