/**
 * The shared-memory all-reduce behind data-parallel training: every replica writes the
 * gradients of its part of the batch to its own slot, waits for the others, and sums all
 * slots in the same order. Each replica thus gets bit-identical summed gradients, applies
 * the same optimizer to them, and keeps bit-identical weights without sending any.
 *
 * Slots are double-buffered by step parity: a replica still summing step k's slots is
 * never overwritten, since step k+1's slots are the other half and step k+2's writers
 * must first pass step k+1's barrier, which needs this replica's step k+1 gradients.
 */
import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from './wasm/simd-kernels';

export interface SharedStepMemory {
  /** 2 parities x replicas x parameters. */
  grads: SharedArrayBuffer;
  /** 2 parities x replicas losses (float64). */
  losses: SharedArrayBuffer;
  /** Int32 [arrivals (monotonic), abort flag]. */
  control: SharedArrayBuffer;
  replicas: number;
  parameters: number;
}

const ARRIVED = 0;
const ABORT = 1;

export function allocateStepMemory(replicas: number, parameters: number): SharedStepMemory {
  return {
    grads: new SharedArrayBuffer(2 * replicas * parameters * 4),
    losses: new SharedArrayBuffer(2 * replicas * 8),
    control: new SharedArrayBuffer(2 * 4),
    replicas, parameters,
  };
}

/** A tensor's values: a view of the wasm memory (no copy) on wasm, else a copy. */
function values(t: tf.Tensor): Float32Array {
  return tf.getBackend() === 'wasm' ? (tf.backend() as unknown as WasmBackend).typedArrayFromHeap(t) : t.dataSync() as Float32Array;
}

/** One replica's view of the shared memory. */
export class StepMemory {
  private readonly grads: Float32Array;
  private readonly losses: Float64Array;
  private readonly control: Int32Array;
  readonly replicas: number;

  constructor(readonly shared: SharedStepMemory, readonly replica: number) {
    this.grads = new Float32Array(shared.grads);
    this.losses = new Float64Array(shared.losses);
    this.control = new Int32Array(shared.control);
    this.replicas = shared.replicas;
  }

  private slot(step: number, replica: number): Float32Array {
    const p = this.shared.parameters;
    const start = ((step & 1) * this.replicas + replica) * p;
    return this.grads.subarray(start, start + p);
  }

  /** Writes this replica's gradients (in variable order; null = zero) and loss, then arrives. */
  publish(step: number, grads: (tf.Tensor | null)[], loss: number): void {
    const slot = this.slot(step, this.replica);
    let offset = 0;
    for (const g of grads) {
      if (g) {
        const v = values(g);
        slot.set(v, offset);
        offset += v.length;
      }
    }
    if (offset === 0) slot.fill(0);
    else if (offset !== slot.length) throw new Error(`gradients hold ${offset} values, expected ${slot.length}`);
    this.losses[(step & 1) * this.replicas + this.replica] = loss;
    Atomics.add(this.control, ARRIVED, 1);
    Atomics.notify(this.control, ARRIVED);
  }

  /** True once every replica has published step `step` (steps count from 0). */
  complete(step: number): boolean {
    return Atomics.load(this.control, ARRIVED) >= this.replicas * (step + 1);
  }

  /** Blocks this thread until every replica has published (worker threads only). */
  waitBlocking(step: number): void {
    for (;;) {
      const seen = Atomics.load(this.control, ARRIVED);
      if (seen >= this.replicas * (step + 1)) return;
      if (Atomics.load(this.control, ABORT)) throw new Error('data-parallel training was stopped');
      Atomics.wait(this.control, ARRIVED, seen, 1000);
    }
  }

  /** Waits without blocking the event loop (the main thread: messages and signals keep flowing). */
  async wait(step: number, failed: Promise<never>): Promise<void> {
    for (;;) {
      const seen = Atomics.load(this.control, ARRIVED);
      if (seen >= this.replicas * (step + 1)) return;
      const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): { async: boolean; value: Promise<string> | string } })
        .waitAsync(this.control, ARRIVED, seen, 1000);
      if (w.async) await Promise.race([w.value, failed]);
    }
  }

  abort(): void {
    Atomics.store(this.control, ABORT, 1);
    Atomics.notify(this.control, ARRIVED);
  }

  /** Sum of all replicas' losses for the step, in replica order. */
  loss(step: number): number {
    let sum = 0;
    for (let r = 0; r < this.replicas; r++) sum += this.losses[(step & 1) * this.replicas + r];
    return sum;
  }

  /**
   * This replica's loss and gradients (by variable) in, every replica's sums out: publishes
   * them, disposes the tensors given, waits for the others with `wait` (blocking in a worker
   * thread, asynchronous in the main thread) and sums.
   */
  async allReduce(step: number, vars: tf.Variable[], loss: tf.Scalar, grads: tf.NamedTensorMap,
    wait: () => void | Promise<void>): Promise<{ loss: tf.Scalar; grads: tf.NamedTensorMap }> {
    this.publish(step, vars.map((v) => grads[v.name] ?? null), loss.dataSync()[0]);
    tf.dispose([loss, ...Object.values(grads)]);
    await wait();
    const summed = this.sum(step, vars.map((v) => v.shape));
    return { loss: tf.scalar(this.loss(step)), grads: Object.fromEntries(vars.map((v, i) => [v.name, summed[i]])) };
  }

  /**
   * All replicas' gradients summed in replica order, as tensors shaped like `shapes`.
   * The same float32 additions in the same order on every replica: bit-identical sums.
   * (The backend adds: copying the slots in and adding with SIMD beats a JS loop.)
   */
  sum(step: number, shapes: number[][]): tf.Tensor[] {
    const slots = Array.from({ length: this.replicas }, (_, r) => this.slot(step, r));
    let offset = 0;
    return shapes.map((shape) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const start = offset;
      offset += size;
      return tf.tidy(() => {
        const parts = slots.map((slot) => tf.tensor(slot.subarray(start, start + size), shape, 'float32'));
        return parts.length === 1 ? parts[0] : parts.length === 2 ? tf.add(parts[0], parts[1]) : tf.addN(parts);
      });
    });
  }
}

/** Splits n rows into `parts` contiguous chunks, the first n % parts one row longer: [start, size] each. */
export function splitRows(n: number, parts: number): [number, number][] {
  const base = Math.floor(n / parts);
  const extra = n % parts;
  const out: [number, number][] = [];
  let start = 0;
  for (let p = 0; p < parts; p++) {
    const size = base + (p < extra ? 1 : 0);
    out.push([start, size]);
    start += size;
  }
  return out;
}
