/**
 * One training step on one thread's part of a batch: the same code in the main thread
 * (training/epoch.ts), in every compute-thread replica (training/replica-worker.ts) and in
 * the benchmark (lib/bench.ts). Each phase is a statement of its own, so that the line
 * profiler times it on its own line, and its `@phase` tag tells the report what it is.
 */
import * as tf from '@tensorflow/tfjs';
import { profile } from '../profiling';
import { nllLoss } from './loss';

/** One thread's rows of a batch; `weight` is their share of the batch's rows. */
export interface Part { images: Float32Array; labels: Int32Array; size: number; weight: number }

/**
 * Sums this thread's loss and gradients with those of the other compute threads and hands
 * back the whole batch's (the identity on one thread). Takes ownership of the tensors given.
 */
export interface GradientReducer {
  allReduce(loss: tf.Scalar, grads: tf.NamedTensorMap): Promise<{ loss: tf.Scalar; grads: tf.NamedTensorMap }>;
}

/** What a step updates: the model, its optimizer, and where the gradients are summed. */
export interface StepTarget {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  /** The model's trainable variables, in the order the gradients are summed. */
  vars: tf.Variable[];
  reducer: GradientReducer;
}

/** The trainable variables of a model, in the order a StepTarget keeps them. */
export function trainableVariables(model: tf.LayersModel): tf.Variable[] {
  return model.trainableWeights.map((w) => w.read() as tf.Variable);
}

/** One step; returns the whole batch's mean loss (the caller disposes it). */
export const trainStep = profile(async function trainStep(s: StepTarget, part: Part): Promise<tf.Scalar> {
  const data = tf.tensor4d(part.images, [part.size, 28, 28, 1]);
  const target = tf.tensor1d(part.labels, 'int32');
  const { value, grads: partGrads } = tf.variableGrads(() => { // @phase backward: runs the next two lines, then the gradients
    const output = s.model.apply(data, { training: true }) as tf.Tensor; // @phase forward
    return nllLoss(output, target, part.weight); // @phase loss
  }, s.vars);
  const { loss, grads } = await s.reducer.allReduce(value, partGrads); // @phase allreduce: summed over the compute threads
  s.optimizer.applyGradients(grads); // @phase optimizer
  tf.dispose([data, target, ...Object.values(grads)]);
  return loss;
});
