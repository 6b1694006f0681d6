/**
 * Layers tfjs-layers lacks for a PyTorch-faithful model, and PyTorch-style initialisers.
 */
import * as tf from '@tensorflow/tfjs';
import { intSeed } from '../random';

type Initializer = ReturnType<typeof tf.initializers.zeros>;
type Kwargs = Record<string, unknown>;

function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

/**
 * Dropout that draws a new mask on every training call from a seeded stream. (The
 * built-in layer either reuses one fixed seed, giving the same mask every step, or
 * draws from Math.random, which is not reproducible.)
 */
export class SeededDropout extends tf.layers.Layer {
  static className = 'SeededDropout';
  readonly rate: number;
  /** Replaced by the trainer at the start of each epoch with rng(seed, 'dropout', epoch). */
  random: () => number = Math.random;

  constructor(config: { rate: number; name?: string }) {
    super({ name: config.name });
    this.rate = config.rate;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = one(inputs);
    if (!kwargs.training || this.rate <= 0) return x;
    return tf.dropout(x, this.rate, undefined, intSeed(this.random));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}
tf.serialization.registerClass(SeededDropout);

/** log(softmax(x)) over the last axis, as F.log_softmax(x, dim=1). */
export class LogSoftmax extends tf.layers.Layer {
  static className = 'LogSoftmax';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.logSoftmax(one(inputs));
  }
}
tf.serialization.registerClass(LogSoftmax);

/** Draws layer seeds in order so that the same model seed gives the same weights. */
export class InitSeeds {
  private readonly random: () => number;
  constructor(random: () => number) {
    this.random = random;
  }

  /**
   * PyTorch's default for Conv2d and Linear: weights and biases uniform in
   * ±1/sqrt(fan_in) (kaiming_uniform with a=sqrt(5)).
   */
  torchDefault(fanIn: number): { kernelInitializer: Initializer; biasInitializer: Initializer } {
    const bound = 1 / Math.sqrt(fanIn);
    return {
      kernelInitializer: tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: intSeed(this.random) }),
      biasInitializer: tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: intSeed(this.random) }),
    };
  }
}
