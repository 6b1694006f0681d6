/**
 * The shared-memory all-reduce behind data-parallel training: every replica writes the
 * gradients of its part of the batch to its own slot and waits for the others; then (above
 * two replicas; two each sum everything, cheaper than a second barrier) each sums its own
 * share of the parameters over all slots, in replica order, into a shared sum
 * (reduce-scatter), and, once every share is summed, reads the whole sum (all-gather). So
 * each replica adds 1/N of the values instead of all of them N times over (at 16 replicas
 * the Net's 3.3 M parameters were 16 x 13 MB read by every replica, every step), and every
 * replica still gets bit-identical sums, applies the same optimizer to them, and keeps
 * bit-identical weights without sending any.
 *
 * Slots and sums are double-buffered by step parity: a replica still reading step k's is
 * never overwritten, since step k+1's are the other half and step k+2's writers must first
 * pass step k+1's barriers, which need this replica's step k+1 gradients.
 */
import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from './wasm/simd-kernels';

export interface SharedStepMemory {
  /** 2 parities x replicas x parameters. */
  grads: SharedArrayBuffer;
  /** 2 parities x parameters: the summed gradients. */
  sums: SharedArrayBuffer;
  /** 2 parities x replicas losses (float64). */
  losses: SharedArrayBuffer;
  /** Int32 [arrivals (monotonic), abort flag, shares summed (monotonic)]. */
  control: SharedArrayBuffer;
  replicas: number;
  parameters: number;
}

/** The counters replicas wait on: gradients published, and shares of the sum done. */
export const ARRIVED = 0;
const ABORT = 1;
export const SUMMED = 2;
export type Barrier = typeof ARRIVED | typeof SUMMED;

export function allocateStepMemory(replicas: number, parameters: number): SharedStepMemory {
  return {
    grads: new SharedArrayBuffer(2 * replicas * parameters * 4),
    sums: new SharedArrayBuffer(2 * parameters * 4),
    losses: new SharedArrayBuffer(2 * replicas * 8),
    control: new SharedArrayBuffer(3 * 4),
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
  private readonly sums: Float32Array;
  private readonly losses: Float64Array;
  private readonly control: Int32Array;
  readonly replicas: number;

  constructor(readonly shared: SharedStepMemory, readonly replica: number) {
    this.grads = new Float32Array(shared.grads);
    this.sums = new Float32Array(shared.sums);
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

  /** True once every replica has passed `barrier` of step `step` (steps count from 0): published, or summed its share. */
  complete(step: number, barrier: Barrier = ARRIVED): boolean {
    return Atomics.load(this.control, barrier) >= this.replicas * (step + 1);
  }

  /** Blocks this thread until every replica has passed `barrier` (worker threads only). */
  waitBlocking(step: number, barrier: Barrier = ARRIVED): void {
    for (;;) {
      const seen = Atomics.load(this.control, barrier);
      if (seen >= this.replicas * (step + 1)) return;
      if (Atomics.load(this.control, ABORT)) throw new Error('data-parallel training was stopped');
      Atomics.wait(this.control, barrier, seen, 1000);
    }
  }

  /** Waits without blocking the event loop (the main thread: messages and signals keep flowing). */
  async wait(step: number, failed: Promise<never>, barrier: Barrier = ARRIVED): Promise<void> {
    for (;;) {
      const seen = Atomics.load(this.control, barrier);
      if (seen >= this.replicas * (step + 1)) return;
      const w = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t?: number): { async: boolean; value: Promise<string> | string } })
        .waitAsync(this.control, barrier, seen, 1000);
      if (w.async) await Promise.race([w.value, failed]);
    }
  }

  abort(): void {
    Atomics.store(this.control, ABORT, 1);
    Atomics.notify(this.control, ARRIVED);
    Atomics.notify(this.control, SUMMED);
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
   * thread, asynchronous in the main thread), sums its share, waits for the other shares.
   */
  async allReduce(step: number, vars: tf.Variable[], loss: tf.Scalar, grads: tf.NamedTensorMap,
    wait: (barrier: Barrier) => void | Promise<void>): Promise<{ loss: tf.Scalar; grads: tf.NamedTensorMap }> {
    this.publish(step, vars.map((v) => grads[v.name] ?? null), loss.dataSync()[0]);
    tf.dispose([loss, ...Object.values(grads)]);
    await wait(ARRIVED);
    const shapes = vars.map((v) => v.shape);
    let summed: tf.Tensor[];
    if (this.replicas <= WHOLE_SUM_REPLICAS) {
      summed = this.sumAll(step, shapes);
    } else {
      this.sumShare(step);
      await wait(SUMMED);
      summed = this.summed(step, shapes);
    }
    return { loss: tf.scalar(this.loss(step)), grads: Object.fromEntries(vars.map((v, i) => [v.name, summed[i]])) };
  }

  /**
   * This replica's share of the parameters summed over every replica's slot, in replica order,
   * into the shared sums; then it says so (SUMMED). Each value gets the same float32 additions
   * in the same order whichever replica sums it: bit-identical to adding whole tensors in
   * replica order. (The backend adds: copying the slots in and adding with SIMD is 2-3x faster
   * than a JS loop over shared memory.)
   */
  sumShare(step: number): void {
    const p = this.shared.parameters;
    const [start, size] = shareOf(p, this.replicas, this.replica);
    const out = this.sums.subarray((step & 1) * p + start, (step & 1) * p + start + size);
    if (size > 0) {
      const sum = sumInOrder(Array.from({ length: this.replicas }, (_, r) => this.slot(step, r).subarray(start, start + size)), [size]);
      out.set(values(sum));
      sum.dispose();
    }
    Atomics.add(this.control, SUMMED, 1);
    Atomics.notify(this.control, SUMMED);
  }

  /**
   * Every slot summed by this replica alone, as tensors shaped like `shapes`: for two replicas,
   * where summing twice the values costs less than a second barrier (measured on 2 cores).
   */
  sumAll(step: number, shapes: number[][]): tf.Tensor[] {
    const slots = Array.from({ length: this.replicas }, (_, r) => this.slot(step, r));
    let offset = 0;
    return shapes.map((shape) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const start = offset;
      offset += size;
      return sumInOrder(slots.map((slot) => slot.subarray(start, start + size)), shape);
    });
  }

  /** The summed gradients of a step (every share summed), as tensors shaped like `shapes`. */
  summed(step: number, shapes: number[][]): tf.Tensor[] {
    const p = this.shared.parameters;
    let offset = (step & 1) * p;
    return shapes.map((shape) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const start = offset;
      offset += size;
      return tf.tensor(this.sums.subarray(start, start + size), shape, 'float32');
    });
  }
}

/** The replicas' values summed in replica order by the backend, as one tensor (its float32 additions: the same on every replica). */
function sumInOrder(parts: Float32Array[], shape: number[]): tf.Tensor {
  return tf.tidy(() => {
    const tensors = parts.map((values) => tf.tensor(values, shape, 'float32'));
    return tensors.length === 1 ? tensors[0] : tensors.length === 2 ? tf.add(tensors[0], tensors[1]) : tf.addN(tensors);
  });
}

/** Up to this many replicas each sums every slot itself; above, each sums its share (reduce-scatter). */
const WHOLE_SUM_REPLICAS = 2;

/** Values per block of a replica's share: shares start on 64-byte lines (a copy out to an odd offset was 3x slower). */
const SHARE_BLOCK = 16;

/** A replica's share of the parameters, [start, size]: whole blocks, the last share takes the rest. */
export function shareOf(parameters: number, replicas: number, replica: number): [number, number] {
  const [block, blocks] = splitRows(Math.ceil(parameters / SHARE_BLOCK), replicas)[replica];
  const start = Math.min(parameters, block * SHARE_BLOCK);
  return [start, Math.max(0, Math.min(parameters, (block + blocks) * SHARE_BLOCK) - start)];
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
