/**
 * A helper of a kernel pool (kernel-pool.ts): sleeps until a call, runs its row of that
 * call's kernel on the shared wasm memory, counts itself done, and sleeps again.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ARGS_PER_THREAD, CONTROL, IDLE, KernelThreadInit, POOL_KERNELS, QUIT } from './kernel-pool';

const init = workerData as KernelThreadInit;
const control = new Int32Array(init.control);
const message = new Uint8Array(init.message);
const kernels = new WebAssembly.Instance(init.module, { env: { memory: init.memory } }).exports as
  Record<string, (...args: number[]) => void>;
const row = CONTROL.ARGS + init.index * ARGS_PER_THREAD;

function fail(err: unknown): void {
  if (Atomics.compareExchange(control, CONTROL.FAILED, 0, init.index + 1) !== 0) return; // the first failure is reported
  const text = new TextEncoder().encode(err instanceof Error ? err.message : String(err)).subarray(0, CONTROL.MESSAGE_BYTES);
  message.set(text);
  control[CONTROL.MESSAGE_LENGTH] = text.length;
}

let seen = Atomics.load(control, CONTROL.GENERATION);
parentPort!.postMessage('ready'); // the pool waits for this before its first call
for (;;) {
  Atomics.wait(control, CONTROL.GENERATION, seen);
  seen = Atomics.load(control, CONTROL.GENERATION);
  const kernel = control[CONTROL.KERNEL];
  if (kernel === QUIT) break;
  if (control[row] !== IDLE) {
    try {
      kernels[POOL_KERNELS[kernel]](...control.subarray(row, row + ARGS_PER_THREAD));
    } catch (err) {
      fail(err);
    }
  }
  Atomics.add(control, CONTROL.DONE, 1);
  Atomics.notify(control, CONTROL.DONE);
}
