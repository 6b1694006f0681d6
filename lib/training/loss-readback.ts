/**
 * Reading each step's loss back to the CPU (to log it and to stop on a NaN) without stalling a
 * GPU. On webgpu, reading a value waits for every kernel queued before it: read right after its
 * step, the GPU would idle while the next batch is prepared and its kernels recorded. So there the
 * loss of a step is read after the next step is queued, while that one runs: every loss is still
 * checked and logged, one step later. On wasm and cpu the kernels have run when the step returns;
 * the loss is read at once, as before.
 */
import * as tf from '@tensorflow/tfjs';

/** A step's loss, once read. */
export interface KnownLoss { batchIndex: number; value: number }

export class LossReadback {
  private pending?: { loss: tf.Scalar; batchIndex: number };

  /** `lag` 1: hand back the previous step's loss (asynchronous backends); 0: this step's. */
  constructor(private readonly lag: 0 | 1 = LossReadback.lagFor(tf.getBackend())) {}

  /** One step behind on a GPU backend, none elsewhere. */
  static lagFor(backend: string): 0 | 1 {
    return backend === 'webgpu' ? 1 : 0;
  }

  /** Takes this step's loss (and its disposal); returns the loss now known, if any. */
  async push(loss: tf.Scalar, batchIndex: number): Promise<KnownLoss | undefined> {
    const earlier = this.pending;
    this.pending = { loss, batchIndex };
    if (this.lag === 0) return this.flush();
    return earlier ? read(earlier) : undefined;
  }

  /** The loss still held, read now (after the last step). */
  async flush(): Promise<KnownLoss | undefined> {
    const held = this.pending;
    this.pending = undefined;
    return held ? read(held) : undefined;
  }

  /** Drops a loss still held (on an error). */
  dispose(): void {
    this.pending?.loss.dispose();
    this.pending = undefined;
  }
}

async function read({ loss, batchIndex }: { loss: tf.Scalar; batchIndex: number }): Promise<KnownLoss> {
  try {
    return { batchIndex, value: (await loss.data())[0] };
  } finally {
    loss.dispose();
  }
}
