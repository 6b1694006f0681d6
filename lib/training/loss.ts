/** The training loss, shared by the main thread and the data-parallel replicas. */
import * as tf from '@tensorflow/tfjs';
import { nllLossOnWebgpu } from '../engine/webgpu/loss-kernels';

/**
 * Negative log-likelihood of log-probabilities (F.nll_loss, mean over the batch). A
 * replica holding part of a batch passes its share of the rows as `weight`, so that the
 * replicas' losses (and gradients) add up to the whole batch's mean.
 */
export function nllLoss(logProbs: tf.Tensor, target: tf.Tensor, weight = 1): tf.Scalar {
  if (tf.getBackend() === 'webgpu' && logProbs.rank === 2) return nllLossOnWebgpu(logProbs, target, weight); // one dispatch each way
  return tf.tidy(() => {
    const mean = tf.neg(tf.mean(tf.sum(tf.mul(logProbs, tf.oneHot(target as tf.Tensor1D, logProbs.shape[1]!)), 1))) as tf.Scalar;
    return weight === 1 ? mean : tf.mul(mean, weight);
  });
}
