/**
 * Data-parallel training on CPU cores. The wasm backend runs on one thread (tfjs turns
 * its threaded build off in Node), so each extra core gets a replica: a worker thread
 * with its own backend, model and optimizer (training/replica-worker.ts). A step splits the
 * batch into one contiguous part per replica (this thread keeps the first), each computes
 * its part's gradients, and the gradients are summed through shared memory
 * (engine/allreduce.ts). Every replica then applies the same update to the same sums, so
 * the weights stay identical without being sent; `sync` sends them anyway at each epoch
 * start (and after a resume). The loss of a part is weighted by its share of the rows,
 * so the sums are the whole batch's mean loss and gradients, as with one thread.
 *
 * With split 'ops' there are no replicas: the threads are kernel threads of this thread's model
 * (engine/wasm/kernel-pool.ts), started here and stopped at close.
 *
 * Like PyTorch's DistributedDataParallel: dropout draws differ from a single-thread run
 * (each replica has its own stream), and batch norm normalises each part by its own
 * statistics; its running averages are the main thread's (sent to all at each sync).
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { StepMemory, allocateStepMemory, splitRows } from '../engine/allreduce';
import { kernelThreadsAvailable, setKernelThreads } from '../engine/wasm/simd-kernels';
import type { Batch } from '../data/loader';
import { OptimizerName, withOptimizerWeights } from './optim';
import { UserError } from '../util/errors';
import { PendingReplies } from '../util/pending-replies';
import { GradientReducer, Part, trainableVariables } from './step';
import { cpuAllotment } from '../util/machine';
import { chooseComputeThreads, type ComputeSplit } from './thread-choice';
import { absorb, isProfiling, ThreadRecord } from '../profiling/runtime';
import type { Split } from '../data/dataset';
import { evaluate, evaluateSums, predictLogProbs, splitPart, TestResult, testResult, TestSums } from './evaluate';

export { MAX_DEFAULT_THREADS, COMPUTE_SPLITS, type ComputeSplit } from './thread-choice';

export interface WireTensor { name?: string; shape: number[]; dtype: tf.DataType; data: Float32Array | Int32Array | Uint8Array }

export interface ReplicaInit {
  shared: ReturnType<typeof allocateStepMemory>;
  replica: number;
  model: string;
  seed: number;
  backend: 'wasm' | 'cpu';
  optimizer: { name: OptimizerName; lr: number; momentum: number };
}

export type ReplicaRequest =
  | { type: 'sync'; id: number; weights: WireTensor[]; optimizer: WireTensor[]; lr: number; seed: number; epoch: number }
  | { type: 'step'; step: number; images: Float32Array; labels: Int32Array; size: number; weight: number; profile: boolean }
  | { type: 'weights'; id: number }
  | { type: 'collect'; id: number }
  | { type: 'evaluate'; id: number; images: Uint8Array; labels: Uint8Array; count: number; batchSize: number; state: WireTensor[] }
  | { type: 'predict'; id: number; images: Uint8Array; labels: Uint8Array; count: number; batchSize: number; state: WireTensor[] };

export type ReplicaReply =
  | { type: 'ready' }
  | { type: 'done'; id: number }
  | { type: 'weights'; id: number; weights: WireTensor[] }
  | { type: 'record'; id: number; record: ThreadRecord }
  | { type: 'evaluated'; id: number; sums: TestSums }
  | { type: 'predicted'; id: number; logProbs: Float32Array }
  | { type: 'error'; message: string; stack?: string };

/** A request that expects a reply, before its id is assigned. */
type Question = Extract<ReplicaRequest, { id: number }> extends infer Q ? Q extends unknown ? Omit<Q, 'id'> : never : never;

/** CPUs this process may use: Slurm's allocation when inside a job, else affinity and cgroup quota. */
export function availableCpus(env = process.env): number {
  return cpuAllotment(env).cpus;
}

/** Compute threads for a backend (and model) by default: see thread-choice.ts. */
export function defaultComputeThreads(backend: string, env = process.env, model?: string, batchSize = 64): number {
  return chooseComputeThreads(backend, env, model, batchSize).threads;
}

/** Checks a --compute-threads value (and --compute-split) against the backend. */
export function checkComputeThreads(threads: number, backend: string, split: ComputeSplit = 'batch'): void {
  if (split === 'ops' && threads > 1 && (backend !== 'wasm' || !kernelThreadsAvailable())) {
    throw new UserError(`--compute-split ops splits the wasm backend's kernels across threads; the ${backend} backend ` +
      (backend === 'wasm' ? 'did not load on a shared memory here' : 'cannot') + ': use --compute-split batch');
  }
  if (!Number.isInteger(threads) || threads < 1) throw new UserError(`--compute-threads ${threads}: expected a whole number of at least 1`);
  if (threads > 1 && backend === 'tensorflow') {
    throw new UserError(`--compute-threads ${threads}: the tensorflow backend uses all cores (or the GPU) itself; use 1 or leave it unset`);
  }
  if (threads > 1 && backend === 'webgpu') {
    throw new UserError(`--compute-threads ${threads}: the webgpu backend computes on the GPU, driven by one thread; use 1 or leave it unset`);
  }
}

function toWire(t: tf.Tensor, name?: string): WireTensor {
  return { name, shape: t.shape, dtype: t.dtype, data: t.dataSync() as WireTensor['data'] };
}

const IMAGE_VALUES = 28 * 28;

export interface DataParallelOptions {
  threads: number;
  /** How the threads share the work (default 'batch'). */
  split?: ComputeSplit;
  model: string;
  seed: number;
  backend: string;
  optimizer: { name: OptimizerName; lr: number; momentum: number };
}

/** The replicas of one training run. With 1 thread there are none and nothing is copied. */
export class DataParallel implements GradientReducer {
  /** Compute threads in all: replicas, or kernel threads of this one model. */
  readonly threads: number;
  readonly split: ComputeSplit;
  /** Models training on parts of each batch (this thread's included). */
  private readonly replicas: number;
  private readonly workers: Worker[] = [];
  private readonly memory?: StepMemory;
  private readonly vars: tf.Variable[];
  private readonly replies = new PendingReplies<ReplicaReply>();
  private step = -1;
  /** Rejects when a replica fails; raced against every wait. */
  private readonly failed: Promise<never>;
  private rejectFailed!: (e: Error) => void;
  private closed = false;
  /** Whether this run started the kernel threads (split 'ops'), to stop them at close. */
  private kernelThreads = false;

  private constructor(model: tf.LayersModel | undefined, readonly options: DataParallelOptions) {
    this.threads = options.threads;
    this.split = options.split ?? 'batch';
    this.replicas = this.split === 'ops' ? 1 : this.threads;
    this.vars = model ? trainableVariables(model) : [];
    this.failed = new Promise<never>((_, reject) => { this.rejectFailed = reject; });
    this.failed.catch(() => undefined); // observed through the races; never unhandled
    checkComputeThreads(this.threads, options.backend, this.split);
    if (this.replicas === 1) return;
    if (options.backend !== 'wasm' && options.backend !== 'cpu') {
      throw new Error(`data-parallel replicas run on wasm or cpu, not ${options.backend}`);
    }
    const parameters = this.vars.reduce((n, v) => n + v.size, 0);
    const shared = allocateStepMemory(this.replicas, parameters);
    this.memory = new StepMemory(shared, 0);
    const script = path.join(__dirname, 'replica-worker.js');
    for (let r = 1; r < this.replicas; r++) {
      const init: ReplicaInit = {
        shared, replica: r, model: options.model, seed: options.seed,
        backend: options.backend as ReplicaInit['backend'], optimizer: options.optimizer,
      };
      const worker = new Worker(script, { workerData: init });
      worker.on('message', (m: ReplicaReply) => this.receive(r, m));
      worker.on('error', (err) => this.fail(new Error(`compute thread ${r} crashed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => {
        if (!this.closed) this.fail(new Error(`compute thread ${r} exited (code ${code})`));
      });
      this.workers.push(worker);
    }
  }

  /** This thread alone: scatter hands back the whole batch, allReduce its own gradients. */
  static single(): DataParallel {
    return new DataParallel(undefined, { threads: 1, model: '', seed: 0, backend: '', optimizer: { name: 'adadelta', lr: 1, momentum: 0 } });
  }

  /** Starts the replicas (each loads its backend and builds the model) and waits until they are ready. */
  static async start(model: tf.LayersModel, options: DataParallelOptions): Promise<DataParallel> {
    const dp = new DataParallel(model, options);
    if (dp.split === 'ops' && dp.threads > 1) {
      await setKernelThreads(dp.threads);
      dp.kernelThreads = true;
    }
    if (dp.replicas > 1) {
      const ready = dp.workers.map((w) => new Promise<void>((resolve) => {
        const onReady = (m: ReplicaReply) => {
          if (m.type !== 'ready') return;
          w.off('message', onReady);
          resolve();
        };
        w.on('message', onReady);
      }));
      try {
        await Promise.race([Promise.all(ready), dp.failed]);
      } catch (err) {
        await dp.close();
        throw err;
      }
    }
    return dp;
  }

  private receive(r: number, m: ReplicaReply): void {
    if (m.type === 'error') {
      const err = new Error(`compute thread ${r} failed: ${m.message}`);
      err.stack = `${err.message}\n--- compute thread stack ---\n${m.stack ?? '(none)'}`;
      this.fail(err);
    } else if ('id' in m) { // every reply to a request carries its id
      this.replies.take(m.id)?.resolve(m);
    }
  }

  private fail(err: Error): void {
    if (this.replies.failure) return;
    this.memory?.abort();
    this.rejectFailed(err);
    this.replies.failAll(err);
  }

  private request(worker: Worker, message: Question): Promise<ReplicaReply> {
    return this.replies.request(undefined, (id) => worker.postMessage({ ...message, id }));
  }

  /**
   * Sends the main thread's weights, optimizer state and learning rate to every replica,
   * and seeds its dropout for the epoch. Call before each epoch.
   */
  async sync(model: tf.LayersModel, optimizer: tf.Optimizer, lr: number, seed: number, epoch: number): Promise<void> {
    if (this.replicas === 1) return;
    const weights = model.getWeights().map((t) => toWire(t));
    const wire = await withOptimizerWeights(optimizer, (state) => state.map((w) => toWire(w.tensor, w.name)));
    await Promise.all(this.workers.map((w) =>
      this.request(w, { type: 'sync', weights, optimizer: wire, lr, seed, epoch })));
  }

  /** Hands the other parts of the batch to the replicas; returns this thread's part. */
  scatter(batch: Batch): Part {
    if (this.replicas === 1) return { images: batch.images, labels: batch.labels, size: batch.size, weight: 1 };
    if (this.replies.failure) throw this.replies.failure;
    const step = ++this.step;
    const rows = splitRows(batch.size, this.replicas);
    rows.slice(1).forEach(([start, size], i) => {
      const images = batch.images.slice(start * IMAGE_VALUES, (start + size) * IMAGE_VALUES);
      const labels = batch.labels.slice(start, start + size);
      const message: ReplicaRequest = { type: 'step', step, images, labels, size, weight: size / batch.size, profile: isProfiling() };
      this.workers[i].postMessage(message, [images.buffer, labels.buffer]);
    });
    const size = rows[0][1];
    return { images: batch.images.subarray(0, size * IMAGE_VALUES), labels: batch.labels.subarray(0, size), size, weight: size / batch.size };
  }

  /**
   * This thread's loss and gradients in, the whole batch's out: summed with every
   * replica's (waiting for them). Takes ownership of (disposes) the tensors given.
   */
  async allReduce(loss: tf.Scalar, grads: tf.NamedTensorMap): Promise<{ loss: tf.Scalar; grads: tf.NamedTensorMap }> {
    if (this.replicas === 1) return { loss, grads };
    const memory = this.memory!;
    return memory.allReduce(this.step, this.vars, loss, grads, (barrier) => memory.wait(this.step, this.failed, barrier));
  }

  /**
   * While profiling: each replica's timeline (and line stats) since the last collect, handed
   * to this thread's profiling session. Call at the end of an epoch.
   */
  async collect(): Promise<void> {
    if (this.replicas === 1 || !isProfiling()) return;
    const replies = await Promise.all(this.workers.map((w) => this.request(w, { type: 'collect' })));
    for (const r of replies) absorb((r as Extract<ReplicaReply, { type: 'record' }>).record);
  }

  /**
   * The test pass across the compute threads: each takes a contiguous run of whole batches
   * (the same batches as on one thread, so the same sums up to the order of adding them),
   * with the main thread's batch-norm running statistics; this thread takes the first.
   * Call after an epoch (every replica then holds the same trainable weights).
   */
  async evaluate(model: tf.LayersModel, split: Split, batchSize: number): Promise<TestResult> {
    const shared = this.shareOut('evaluate', model, split, batchSize);
    if (!shared) return evaluate(model, split, batchSize);
    const own = await evaluateSums(model, shared.own, batchSize);
    const replies = await Promise.race([Promise.all(shared.others), this.failed]);
    return testResult(own, ...replies.map((r) => (r as Extract<ReplicaReply, { type: 'evaluated' }>).sums));
  }

  /**
   * The model's log-probabilities for every image of a split ([count × 10]), across the
   * threads as the test pass is: the same values as predictLogProbs on one thread.
   */
  async predict(model: tf.LayersModel, split: Split, batchSize: number): Promise<Float32Array> {
    const shared = this.shareOut('predict', model, split, batchSize);
    if (!shared) return predictLogProbs(model, split, batchSize);
    const own = await predictLogProbs(model, shared.own, batchSize);
    const replies = await Promise.race([Promise.all(shared.others), this.failed]);
    const out = new Float32Array(split.count * 10);
    out.set(own, 0);
    let at = own.length;
    for (const r of replies) {
      const part = (r as Extract<ReplicaReply, { type: 'predicted' }>).logProbs;
      out.set(part, at);
      at += part.length;
    }
    return out;
  }

  /**
   * Shares a split out for a test pass or predictions: each thread a contiguous run of whole
   * batches, with the main thread's batch-norm running statistics (the trainable weights are
   * the same everywhere). Sends the other threads theirs; this thread's part is `own`.
   * Undefined when one thread does it all.
   */
  private shareOut(type: 'evaluate' | 'predict', model: tf.LayersModel, split: Split, batchSize: number) {
    const batches = Math.ceil(split.count / batchSize);
    const parts = Math.min(this.replicas, batches);
    if (parts <= 1) return undefined;
    if (this.replies.failure) throw this.replies.failure;
    const state = model.nonTrainableWeights.map((w) => toWire(w.read()));
    const ranges = splitRows(batches, parts).map(([first, n]) => [first * batchSize, Math.min(split.count, (first + n) * batchSize) - first * batchSize]);
    const others = ranges.slice(1).map(([start, count], i) => {
      const part = splitPart(split, start, count);
      return this.replies.request(undefined, (id) => {
        const message: ReplicaRequest = { type, id, images: part.images, labels: part.labels, count, batchSize, state };
        this.workers[i].postMessage(message, [part.images.buffer as ArrayBuffer, part.labels.buffer as ArrayBuffer]);
      });
    });
    return { own: splitPart(split, 0, ranges[0][1]), others };
  }

  /** Each replica's weights (replica 1 first), for checking that they match this thread's. */
  async replicaWeights(): Promise<Float32Array[][]> {
    const replies = await Promise.all(this.workers.map((w) => this.request(w, { type: 'weights' })));
    return replies.map((r) => (r as Extract<ReplicaReply, { type: 'weights' }>).weights.map((w) => w.data as Float32Array));
  }

  /** Ends the replicas (also while they wait in a step). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.memory?.abort();
    if (this.kernelThreads) await setKernelThreads(1);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
