/**
 * A DataLoader in PyTorch's shape: a sampler (sequential or seeded shuffle) split into
 * batches, each collated into one Float32Array of normalised pixels plus labels.
 */
import type { Split } from './data/mnist';
import { IMAGE_SIZE } from './data/mnist';
import { collate } from './data/transforms';
import { permutation, rng } from './random';

export interface Batch {
  /** Position of the batch in the epoch, from 0. */
  index: number;
  size: number;
  /** size x 28 x 28 x 1, normalised. */
  images: Float32Array;
  labels: Int32Array;
}

export interface LoaderOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  dropLast?: boolean;
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  private epoch = 0;

  constructor(readonly split: Split, options: LoaderOptions) {
    this.batchSize = options.batchSize;
    this.shuffle = options.shuffle ?? false;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
  }

  /** Selects the epoch whose shuffle order the next iteration uses (as DistributedSampler.set_epoch). */
  setEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  /** Number of batches per epoch (len(loader) in PyTorch). */
  get length(): number {
    const n = this.split.count / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** Sample indices of every batch of the current epoch, in order. */
  batchIndices(): Int32Array[] {
    const order = this.shuffle
      ? permutation(this.split.count, rng(this.seed, 'shuffle', this.epoch))
      : Int32Array.from({ length: this.split.count }, (_, i) => i);
    const out: Int32Array[] = [];
    for (let i = 0; i < this.length; i++) out.push(order.subarray(i * this.batchSize, (i + 1) * this.batchSize));
    return out;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    const px = IMAGE_SIZE * IMAGE_SIZE;
    const all = this.batchIndices();
    for (let index = 0; index < all.length; index++) {
      const indices = all[index];
      const images = new Float32Array(indices.length * px);
      const labels = new Int32Array(indices.length);
      collate(this.split.images, this.split.labels, indices, images, labels);
      // On synchronous backends (wasm, cpu) the training step never yields: give timers
      // (the progress bar, signals) a turn between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
      yield { index, size: indices.length, images, labels };
    }
  }
}
