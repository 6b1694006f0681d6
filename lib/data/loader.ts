/**
 * A DataLoader in PyTorch's shape: a sampler (sequential, seeded shuffle, or given
 * indices) split into batches, built in the main thread (numWorkers 0) or by a pool of
 * worker threads, and yielded in sampler order.
 *
 * With workers, batch i goes to worker i mod numWorkers, with up to
 * numWorkers × prefetchFactor batches in flight. The data set lives in shared memory, so
 * workers do not copy it; batches come back as transferred buffers.
 *
 * While profiling, the loader records on the main thread's timeline how many batches were
 * ready each time the loop asked for the next one (the `queue` counter), and at the end of
 * an epoch collects each worker's line stats and timeline (data/loader-worker.ts).
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { IMAGE_SIZE, shareSplit, Split } from './dataset';
import { AugmentOptions, collate, CollateContext } from './transforms';
import type { BatchReply, BatchRequest, WorkerInit } from './loader-worker';
import { PendingReplies } from '../util/pending-replies';
import { permutation, rng } from '../util/random';
import { absorb, isProfiling, ThreadRecord } from '../profiling/runtime';
import { clock, recordCounter, recordSpan } from '../profiling/trace';

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
  /** 0 builds batches in the main thread (as PyTorch's num_workers=0). */
  numWorkers?: number;
  /** Batches in flight per worker (PyTorch's default 2). */
  prefetchFactor?: number;
  /** Keep the workers between epochs (call close() when done). */
  persistentWorkers?: boolean;
  augment?: AugmentOptions | null;
  /** Sample order to use instead of sequential/shuffled (like a Sampler). */
  sampler?: ArrayLike<number>;
  /** Ends the iteration early (before the next batch) once aborted, e.g. on a Slurm warning signal. */
  signal?: AbortSignal;
}

/** A built batch; `builtAt` is when its worker finished building it (the shared clock, while profiling). */
type Built = { images: Float32Array; labels: Int32Array; builtAt?: number };

/** The worker threads of one DataLoader. */
class WorkerPool {
  private readonly workers: Worker[] = [];
  /** Batches requested and not yet built, with the batch's index for error messages. */
  private readonly replies = new PendingReplies<Built | ThreadRecord, number>();

  constructor(count: number, init: Omit<WorkerInit, 'thread'>) {
    const script = path.join(__dirname, 'loader-worker.js');
    for (let w = 0; w < count; w++) {
      const worker = new Worker(script, { workerData: { ...init, thread: `loader worker ${w + 1}` } satisfies WorkerInit });
      worker.on('message', (reply: BatchReply) => this.receive(w, reply));
      worker.on('error', (err) => this.replies.failAll(new Error(`DataLoader worker ${w} crashed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => {
        if (code !== 0 && this.replies.size) this.replies.failAll(new Error(`DataLoader worker ${w} exited with code ${code}`));
      });
      this.workers.push(worker);
    }
  }

  private receive(w: number, reply: BatchReply): void {
    const p = this.replies.take(reply.id);
    if (!p) return;
    if ('error' in reply) {
      const err = new Error(`DataLoader worker ${w} failed on batch ${p.info}: ${reply.error.message}`);
      err.stack = `${err.message}\n--- worker stack ---\n${reply.error.stack ?? '(none)'}`;
      // Only this batch fails, and no new ones start: batches before it, still being built by
      // healthy workers, arrive in order first (the iteration rejects when it reaches this one).
      this.replies.failure ??= err;
      p.reject(err);
    } else {
      p.resolve('record' in reply ? reply.record : reply);
    }
  }

  request(worker: number, batch: number, indices: Int32Array, context: CollateContext, profile: boolean): Promise<Built> {
    return this.replies.request(batch, (id) => {
      const req: BatchRequest = { type: 'batch', id, indices: indices.slice(), context, batch, profile };
      this.workers[worker].postMessage(req);
    }) as Promise<Built>;
  }

  /** Each worker's line stats and timeline since the last collect (their message queues are empty by then). */
  collect(): Promise<ThreadRecord[]> {
    return Promise.all(this.workers.map((w) => this.replies.request(-1, (id) => {
      const req: BatchRequest = { type: 'collect', id };
      w.postMessage(req);
    }) as Promise<ThreadRecord>));
  }

  /** Whether idle workers may keep the process alive. */
  ref(on: boolean): void {
    for (const w of this.workers) (on ? w.ref() : w.unref());
  }

  /** The worker threads' ids (Node's threadId), in worker order. */
  get threadIds(): number[] {
    return this.workers.map((w) => w.threadId);
  }

  get broken(): boolean {
    return this.replies.failure !== undefined;
  }

  async terminate(): Promise<void> {
    this.replies.failAll(new Error('DataLoader closed'));
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly split: Split;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly numWorkers: number;
  readonly prefetchFactor: number;
  readonly persistentWorkers: boolean;
  readonly augment: AugmentOptions | null;
  private readonly sampler?: ArrayLike<number>;
  private readonly signal?: AbortSignal;
  private epoch = 0;
  private pool?: WorkerPool;

  constructor(split: Split, options: LoaderOptions) {
    this.numWorkers = options.numWorkers ?? 0;
    if (!Number.isInteger(this.numWorkers) || this.numWorkers < 0) throw new RangeError(`numWorkers must be an integer >= 0, got ${options.numWorkers}`);
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError(`batchSize must be a positive integer, got ${options.batchSize}`);
    this.split = this.numWorkers > 0 ? shareSplit(split) : split;
    this.batchSize = options.batchSize;
    this.shuffle = options.shuffle ?? false;
    this.seed = options.seed ?? 0;
    this.dropLast = options.dropLast ?? false;
    this.prefetchFactor = options.prefetchFactor ?? 2;
    this.persistentWorkers = options.persistentWorkers ?? false;
    this.augment = options.augment ?? null;
    this.sampler = options.sampler;
    this.signal = options.signal;
  }

  /** Selects the epoch whose shuffle order and augmentation the next iteration uses. */
  setEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  private get sampleCount(): number {
    return this.sampler?.length ?? this.split.count;
  }

  /** Number of batches per epoch (len(loader) in PyTorch). */
  get length(): number {
    const n = this.sampleCount / this.batchSize;
    return this.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** Sample indices of every batch of the current epoch, in order. */
  batchIndices(): Int32Array[] {
    const order = this.sampler ? Int32Array.from(this.sampler)
      : this.shuffle ? permutation(this.split.count, rng(this.seed, 'shuffle', this.epoch))
        : Int32Array.from({ length: this.split.count }, (_, i) => i);
    const out: Int32Array[] = [];
    for (let i = 0; i < this.length; i++) out.push(order.subarray(i * this.batchSize, (i + 1) * this.batchSize));
    return out;
  }

  private context(): CollateContext {
    return { augment: this.augment, seed: this.seed, epoch: this.epoch };
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Batch> {
    if (this.numWorkers === 0) {
      yield* this.inMainThread();
      return;
    }
    if (!this.pool || this.pool.broken) {
      this.pool = new WorkerPool(this.numWorkers, { images: this.split.images, labels: this.split.labels });
    }
    const pool = this.pool;
    pool.ref(true);
    const all = this.batchIndices();
    const context = this.context();
    const inFlight = new Map<number, Promise<Built>>();
    const limit = this.numWorkers * this.prefetchFactor;
    const profiled = isProfiling();
    /** While profiling: when each batch was built, and each ask for the next batch (for the queue counter). */
    const builtAt = new Map<number, number>();
    const received = new Set<number>();
    const asks: { index: number; at: number; next: number; received: number; wantedReceived: boolean }[] = [];
    let next = 0;
    let finished = false;
    try {
      for (let index = 0; index < all.length; index++) {
        if (this.signal?.aborted) break;
        while (next < all.length && inFlight.size < limit) {
          const request = pool.request(next % this.numWorkers, next, all[next], context, profiled);
          const requested = next;
          request.then((b) => {
            if (!profiled) return;
            received.add(requested);
            if (b.builtAt !== undefined) builtAt.set(requested, b.builtAt);
          }, () => {}); // rejections are observed when awaited below
          inFlight.set(next, request);
          next++;
        }
        if (profiled) asks.push({ index, at: clock(), next, received: received.size, wantedReceived: received.has(index) });
        const batch = await inFlight.get(index)!;
        received.delete(index);
        inFlight.delete(index);
        yield { index, size: all[index].length, images: batch.images, labels: batch.labels };
      }
      finished = !this.signal?.aborted;
      if (finished && profiled && isProfiling()) {
        // The queue each time the loop asked: batches in flight that their worker had built by then
        // (`ready`; `received`: that the main thread had also taken in), and whether the wanted one was.
        for (const a of asks) {
          let ready = 0;
          for (let j = a.index; j < a.next; j++) if ((builtAt.get(j) ?? Infinity) <= a.at) ready++;
          recordCounter('queue', { ready, received: a.received, in_flight: a.next - a.index,
            wanted_ready: (builtAt.get(a.index) ?? Infinity) <= a.at ? 1 : 0, wanted_received: a.wantedReceived ? 1 : 0 }, a.at);
        }
        // What the workers recorded this epoch, for the main thread's profiling session.
        for (const record of await pool.collect()) absorb(record);
      }
    } finally {
      // Ends the workers after an epoch, an early break or an exception in the loop body,
      // unless they are persistent and the epoch completed.
      if (!this.persistentWorkers || !finished || pool.broken) {
        this.pool = undefined;
        await pool.terminate();
      } else {
        pool.ref(false);
      }
    }
  }

  private async *inMainThread(): AsyncGenerator<Batch> {
    const px = IMAGE_SIZE * IMAGE_SIZE;
    const all = this.batchIndices();
    const context = this.context();
    for (let index = 0; index < all.length; index++) {
      if (this.signal?.aborted) return;
      const indices = all[index];
      const images = new Float32Array(indices.length * px);
      const labels = new Int32Array(indices.length);
      const t0 = isProfiling() ? clock() : 0;
      collate(this.split.images, this.split.labels, indices, images, labels, context);
      if (t0) recordSpan('build', t0, clock());
      // On synchronous backends (wasm, cpu) the training step never yields: give timers
      // (the progress bar, signals) a turn between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
      yield { index, size: indices.length, images, labels };
    }
  }

  /** Thread ids of the workers now alive (none between epochs unless they are persistent). */
  get workerThreadIds(): number[] {
    return this.pool?.threadIds ?? [];
  }

  /** Ends persistent workers. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.terminate();
  }
}
