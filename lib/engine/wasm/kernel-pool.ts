/**
 * Kernel threads: one operation's work split across threads that share the wasm backend's
 * memory (intra-op, as XNNPACK's thread pool or PyTorch's intra-op threads), where
 * data-parallel replicas (training/data-parallel.ts) split the batch across whole models.
 *
 * Each helper thread (kernel-thread.ts) instantiates the same SIMD kernels on tfjs's shared
 * memory (shared-memory.ts) and sleeps in Atomics.wait. A call writes one argument row per
 * thread into a shared control block, wakes the helpers, runs the calling thread's own row,
 * and waits blocked until every helper has finished: the kernels read and write tensors in
 * place, so nothing is copied, and the caller's tfjs allocations happen only while the
 * helpers sleep. A kernel that fails in a helper (a trap) fails the call with its message;
 * a helper that stops answering fails it after HELPER_TIMEOUT_MS, never a hang.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** The kernels a pool runs: the exports of simd-kernels.wat that take only i32 arguments. */
export const POOL_KERNELS = ['conv2d_valid', 'conv_filter_grad'] as const;
export type PoolKernel = typeof POOL_KERNELS[number];

/** Control block, in Int32 slots. */
const GENERATION = 0; // bumped to wake the helpers for a call
const DONE = 1; // helpers finished with the current call
const FAILED = 2; // 1 + the index of the first helper whose kernel failed, else 0
const KERNEL = 3; // index in POOL_KERNELS, or QUIT
const MESSAGE_LENGTH = 4; // bytes of the failed helper's message
const ARGS = 8; // then one row of ARGS_PER_THREAD per thread (thread 0 = the caller)
export const ARGS_PER_THREAD = 16;
export const QUIT = -1;
/** A row whose first value is this is skipped (a thread with no share of the work). */
export const IDLE = -1;
const MESSAGE_BYTES = 1024;

/** A helper that has not finished its share after this long has stopped answering. */
const HELPER_TIMEOUT_MS = 120_000;

export interface KernelThreadInit {
  control: SharedArrayBuffer;
  message: SharedArrayBuffer;
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
  index: number;
}

export class KernelPool {
  private readonly control: Int32Array;
  private readonly message: Uint8Array;
  private readonly helpers: Worker[] = [];
  private closed = false;

  /**
   * Starts the helpers and waits until each has its kernels instantiated (one that fails to
   * start fails this). `runHere` runs a kernel on the calling thread: the same exports.
   */
  static async start(threads: number, memory: WebAssembly.Memory, module: WebAssembly.Module,
    runHere: (kernel: PoolKernel, args: number[]) => void): Promise<KernelPool> {
    const pool = new KernelPool(threads, memory, module, runHere);
    try {
      await Promise.all(pool.helpers.map((w, i) => new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', (err) => reject(new Error(`kernel thread ${i + 1} failed to start: ${err.message}`)));
        w.once('exit', (code) => reject(new Error(`kernel thread ${i + 1} exited while starting (code ${code})`)));
      })));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  private constructor(readonly threads: number, memory: WebAssembly.Memory, module: WebAssembly.Module,
    private readonly runHere: (kernel: PoolKernel, args: number[]) => void) {
    if (!(memory.buffer instanceof SharedArrayBuffer)) throw new Error('kernel threads need the wasm backend on a shared memory');
    const control = new SharedArrayBuffer(4 * (ARGS + ARGS_PER_THREAD * threads));
    const message = new SharedArrayBuffer(MESSAGE_BYTES);
    this.control = new Int32Array(control);
    this.message = new Uint8Array(message);
    for (let index = 1; index < threads; index++) {
      const init: KernelThreadInit = { control, message, memory, module, index };
      const worker = new Worker(path.join(__dirname, 'kernel-thread.js'), { workerData: init });
      worker.unref(); // a sleeping helper never keeps the process alive
      this.helpers.push(worker);
    }
  }

  /**
   * Runs `kernel` once per row of `rows` (one per thread at most; thread 0, this one, takes
   * the first), all at once, and returns when all are done.
   */
  run(kernel: PoolKernel, rows: number[][]): void {
    if (this.closed) throw new Error('the kernel threads were shut down');
    if (rows.length > this.threads) throw new Error(`${rows.length} shares of ${kernel} for ${this.threads} threads`);
    const c = this.control;
    for (let t = 1; t < this.threads; t++) {
      const row = rows[t] ?? [IDLE];
      c.set(row, ARGS + t * ARGS_PER_THREAD);
    }
    c[KERNEL] = POOL_KERNELS.indexOf(kernel);
    Atomics.store(c, DONE, 0);
    Atomics.store(c, FAILED, 0);
    Atomics.add(c, GENERATION, 1);
    Atomics.notify(c, GENERATION);
    let failure: unknown;
    try {
      this.runHere(kernel, rows[0]);
    } catch (err) {
      failure = err; // still wait for the helpers: they are writing into the same tensors
    }
    this.waitForHelpers(kernel);
    if (failure) throw failure;
    const failed = Atomics.load(c, FAILED);
    if (failed) {
      const text = new TextDecoder().decode(this.message.slice(0, c[MESSAGE_LENGTH]));
      throw new Error(`kernel thread ${failed - 1} failed in ${kernel}: ${text}`);
    }
  }

  private waitForHelpers(kernel: PoolKernel): void {
    const c = this.control;
    const helpers = this.threads - 1;
    let lastDone = -1;
    let since = Date.now();
    for (;;) {
      const done = Atomics.load(c, DONE);
      if (done >= helpers) return;
      if (done !== lastDone) {
        lastDone = done;
        since = Date.now();
      } else if (Date.now() - since > HELPER_TIMEOUT_MS) {
        this.closed = true;
        throw new Error(`kernel threads stopped answering in ${kernel} (${done} of ${helpers} finished in ${HELPER_TIMEOUT_MS / 1000} s)`);
      }
      Atomics.wait(c, DONE, done, 1000);
    }
  }

  /** Ends the helpers. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed && !this.helpers.length) return;
    this.closed = true;
    this.control[KERNEL] = QUIT;
    Atomics.add(this.control, GENERATION, 1);
    Atomics.notify(this.control, GENERATION);
    const helpers = this.helpers.splice(0);
    await Promise.all(helpers.map((w) => w.terminate()));
  }
}

/** Slots of the control block, for kernel-thread.ts. */
export const CONTROL = { GENERATION, DONE, FAILED, KERNEL, MESSAGE_LENGTH, ARGS, MESSAGE_BYTES } as const;
