/**
 * One pass over the training data, in the reference's order: for each batch of the
 * DataLoader, one training step (training/step.ts), a log line every `logInterval`
 * batches. Its line-profiler table answers the study's question: the loop header's time is
 * the wait for the next batch, the step line the computation.
 */
import * as tf from '@tensorflow/tfjs';
import type { DataLoader } from '../data/loader';
import { profile } from '../profiling';
import { DataParallel } from './data-parallel';
import { KnownLoss, LossReadback } from './loss-readback';
import type { Progress } from './progress';
import { StepTarget, trainableVariables, trainStep } from './step';

/** The loss stopped being a finite number: training cannot go on (the run keeps the epochs before). */
export class DivergedError extends Error {
  constructor(readonly epoch: number, readonly batch: number, readonly loss: number) {
    super(`the training loss became ${loss} at epoch ${epoch}, batch ${batch}`);
    this.name = 'DivergedError';
  }
}

export interface EpochContext {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  loader: DataLoader;
  logInterval: number;
  progress: Progress;
  /** Compute threads sharing each step (default: this thread alone). */
  parallel?: DataParallel;
  /** Called with each logged batch loss (per-batch metrics of the run folder). */
  onBatchLoss?: (epoch: number, batchIndex: number, loss: number) => void;
}

/** Prints the reference's log line for a batch and hands its loss to the run's per-batch metrics. */
function logBatch(ctx: EpochContext, epoch: number, batchIndex: number, loss: number): void {
  ctx.progress.line(trainLogLine(epoch, batchIndex, ctx.loader, loss));
  ctx.onBatchLoss?.(epoch, batchIndex, loss);
}

/**
 * One epoch; returns the mean training loss. One statement per line, so that its
 * line-profiler table compares line for line with the PyTorch exercise's
 * (`for batch_idx, (data, target) in enumerate(train_loader)` ...).
 */
export const trainEpoch = profile(async function trainEpoch(ctx: EpochContext, epoch: number): Promise<number> {
  const { loader, progress } = ctx;
  const parallel = ctx.parallel ?? DataParallel.single();
  const target: StepTarget = { model: ctx.model, optimizer: ctx.optimizer, vars: trainableVariables(ctx.model), reducer: parallel };
  const started = performance.now();
  let seen = 0;
  let lastLoss = NaN; // for the progress bar, read at log intervals
  let lossSum = tf.scalar(0);
  const readback = new LossReadback(); // on a GPU, each step's loss is read while the next one runs
  const check = ({ batchIndex, value }: KnownLoss) => {
    if (!Number.isFinite(value)) throw new DivergedError(epoch, batchIndex, value);
    if (batchIndex % ctx.logInterval === 0) {
      lastLoss = value;
      logBatch(ctx, epoch, batchIndex, lastLoss);
    }
  };
  progress.start(`Epoch ${epoch}`, loader.split.count);
  try {
    for await (const batch of loader) { // @phase data: waiting for the next batch
      const part = parallel.scatter(batch); // @phase scatter: the other parts go to the other compute threads
      const loss = await trainStep(target, part); // @phase step: forward, loss, backward, all-reduce, optimizer
      lossSum = accumulate(lossSum, loss, batch.size);
      seen += batch.size;
      const known = await readback.push(loss, batch.index); // @phase readback: the loss, logged and checked (a NaN stops the run); on a GPU the previous step's, so this waits for the GPU
      if (known) check(known);
      progress.update(seen, lastLoss, seen / ((performance.now() - started) / 1000));
    }
    const last = await readback.flush(); // @phase readback
    if (last) check(last);
  } catch (err) {
    readback.dispose();
    lossSum.dispose();
    throw err;
  } finally {
    progress.stop();
  }
  const mean = (await lossSum.data())[0] / seen;
  lossSum.dispose();
  return mean;
});

/** sum + loss · n, disposing the old sum (keeps the epoch's loss on the device). */
function accumulate(sum: tf.Scalar, loss: tf.Scalar, n: number): tf.Scalar {
  const next = tf.tidy(() => sum.add<tf.Scalar>(loss.mul(n)));
  sum.dispose();
  return next;
}

/** `Train Epoch: 1 [640/8000 (8%)]\tLoss: 0.412345`, as the reference prints it. */
export function trainLogLine(epoch: number, batchIndex: number, loader: DataLoader, loss: number): string {
  return `Train Epoch: ${epoch} [${batchIndex * loader.batchSize}/${loader.split.count} ` +
    `(${((100 * batchIndex) / loader.length).toFixed(0)}%)]\tLoss: ${loss.toFixed(6)}`;
}
