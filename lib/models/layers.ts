/**
 * Layers tfjs-layers lacks for a PyTorch-faithful model, and PyTorch-style initialisers.
 */
import * as tf from '@tensorflow/tfjs';
import { batchNormTraining } from '../engine/batch-norm';
import { seededDropout } from '../engine/dropout';
import { movingAveragesOnWebgpu } from '../engine/webgpu/batch-norm-kernels';
import { conv2dBiasOnWebgpu } from '../engine/webgpu/conv-kernels';
import { logSoftmaxOnWebgpu } from '../engine/webgpu/loss-kernels';
import { intSeed } from '../util/random';

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
    return seededDropout(x, this.rate, intSeed(this.random));
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), rate: this.rate };
  }
}
tf.serialization.registerClass(SeededDropout);

/**
 * PyTorch's BatchNorm2d (and BatchNorm1d) over the last axis: in training, normalises by
 * the batch's statistics (biased variance) and updates the running averages with momentum
 * 0.1 and the unbiased variance; at test time, normalises by the running averages. The
 * training pass is one fused operation (engine/batch-norm.ts). Weights in tfjs's order and
 * names (gamma, beta, moving_mean, moving_variance), so checkpoints map one to one.
 */
export class BatchNorm2d extends tf.layers.Layer {
  static className = 'BatchNorm2d';
  readonly momentum: number;
  readonly epsilon: number;
  private gamma?: tf.LayerVariable;
  private beta?: tf.LayerVariable;
  private movingMean?: tf.LayerVariable;
  private movingVariance?: tf.LayerVariable;

  constructor(config: { momentum?: number; epsilon?: number; name?: string } = {}) {
    super({ name: config.name });
    this.momentum = config.momentum ?? 0.1;
    this.epsilon = config.epsilon ?? 1e-5;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = [shape[shape.length - 1]!];
    this.gamma = this.addWeight('gamma', channels, 'float32', tf.initializers.ones());
    this.beta = this.addWeight('beta', channels, 'float32', tf.initializers.zeros());
    this.movingMean = this.addWeight('moving_mean', channels, 'float32', tf.initializers.zeros(), undefined, false);
    this.movingVariance = this.addWeight('moving_variance', channels, 'float32', tf.initializers.ones(), undefined, false);
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    const x = one(inputs);
    const gamma = this.gamma!.read() as tf.Tensor1D;
    const beta = this.beta!.read() as tf.Tensor1D;
    if (!kwargs.training) {
      return tf.batchNorm(x, this.movingMean!.read() as tf.Tensor1D, this.movingVariance!.read() as tf.Tensor1D, beta, gamma, this.epsilon);
    }
    const { y, mean, variance } = batchNormTraining(x, gamma, beta, this.epsilon);
    const rows = x.size / x.shape[x.shape.length - 1];
    tf.tidy(() => {
      const m = this.momentum;
      if (tf.getBackend() === 'webgpu') { // one dispatch, not seven
        const [newMean, newVariance] = movingAveragesOnWebgpu(this.movingMean!.read(), this.movingVariance!.read(), mean, variance, m, rows);
        this.movingMean!.write(newMean);
        this.movingVariance!.write(newVariance);
        return;
      }
      const unbiased = tf.mul(variance, rows / Math.max(1, rows - 1));
      this.movingMean!.write(tf.add(tf.mul(this.movingMean!.read(), 1 - m), tf.mul(mean, m)));
      this.movingVariance!.write(tf.add(tf.mul(this.movingVariance!.read(), 1 - m), tf.mul(unbiased, m)));
    });
    return y;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), momentum: this.momentum, epsilon: this.epsilon };
  }
}
tf.serialization.registerClass(BatchNorm2d);

/** log(softmax(x)) over the last axis, as F.log_softmax(x, dim=1). */
export class LogSoftmax extends tf.layers.Layer {
  static className = 'LogSoftmax';
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = one(inputs);
    return tf.getBackend() === 'webgpu' && x.rank === 2 ? logSoftmaxOnWebgpu(x) : tf.logSoftmax(x); // one dispatch each way
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

export interface Conv2dConfig {
  filters: number;
  kernelSize: number;
  strides?: number;
  padding: 'same' | 'valid';
  useBias?: boolean;
  kernelInitializer: Initializer;
  biasInitializer?: Initializer;
  inputShape?: number[];
  name?: string;
}

/**
 * A 2-D convolution on the plain conv2d op. tfjs-layers' Conv2D uses the fused op, whose
 * gradient computes the input gradient even when nothing needs it (the first layer's
 * input is the data): about 30 ms of every Net training step on wasm. The plain op's
 * gradients are computed only for inputs on the path to a trainable weight.
 */
export class Conv2d extends tf.layers.Layer {
  static className = 'Conv2d';
  readonly filters: number;
  readonly kernelSize: number;
  readonly strides: number;
  readonly padding: 'same' | 'valid';
  readonly useBias: boolean;
  private readonly kernelInitializer: Initializer;
  private readonly biasInitializer?: Initializer;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(config: Conv2dConfig) {
    super({ name: config.name, inputShape: config.inputShape });
    this.filters = config.filters;
    this.kernelSize = config.kernelSize;
    this.strides = config.strides ?? 1;
    this.padding = config.padding;
    this.useBias = config.useBias ?? true;
    this.kernelInitializer = config.kernelInitializer;
    this.biasInitializer = config.biasInitializer;
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const channels = shape[shape.length - 1]!;
    this.kernel = this.addWeight('kernel', [this.kernelSize, this.kernelSize, channels, this.filters], 'float32', this.kernelInitializer);
    if (this.useBias) this.bias = this.addWeight('bias', [this.filters], 'float32', this.biasInitializer);
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [n, h, w] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const out = (size: number | null) => size == null ? null
      : this.padding === 'same' ? Math.ceil(size / this.strides) : Math.floor((size - this.kernelSize) / this.strides) + 1;
    return [n, out(h), out(w), this.filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs) as tf.Tensor4D;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      if (this.bias && tf.getBackend() === 'webgpu') return conv2dBiasOnWebgpu(x, kernel, this.bias.read() as tf.Tensor1D, this.strides, this.padding); // one dispatch
      const y = tf.conv2d(x, kernel, this.strides, this.padding);
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), filters: this.filters, kernelSize: this.kernelSize, strides: this.strides, padding: this.padding, useBias: this.useBias };
  }
}
tf.serialization.registerClass(Conv2d);
