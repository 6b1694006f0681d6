/** Optimizers with PyTorch's defaults, and the StepLR(step_size=1, gamma) schedule. */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../util/errors';
import { adadeltaOnWasm } from '../engine/wasm/simd-kernels';
import { adadeltaOnWebgpu } from '../engine/webgpu/optimizer';

export const OPTIMIZERS = ['adadelta', 'sgd', 'adam'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

export function createOptimizer(name: OptimizerName, lr: number, momentum: number): tf.Optimizer {
  switch (name) {
    // torch.optim.Adadelta defaults: rho 0.9, eps 1e-6.
    case 'adadelta': return new TorchAdadelta(lr, 0.9, 1e-6);
    case 'sgd': return momentum > 0 ? tf.train.momentum(lr, momentum) : tf.train.sgd(lr);
    // torch.optim.Adam defaults: betas (0.9, 0.999), eps 1e-8.
    case 'adam': return tf.train.adam(lr, 0.9, 0.999, 1e-8);
    default: throw new UserError(`unknown optimizer '${name}': expected one of ${OPTIMIZERS.join(', ')}`);
  }
}

/** Learning rate for a 1-based epoch: lr · gamma^(epoch-1), as StepLR stepped after each epoch. */
export function learningRateAt(lr: number, gamma: number, epoch: number): number {
  return lr * gamma ** (epoch - 1);
}

/**
 * Sets the rate the next step uses. tfjs's SGD and Momentum step with a scalar cached from the
 * rate (`c`) that only their own setLearningRate() renews: writing `.learningRate` alone left
 * them at the first epoch's rate while the records said otherwise. Adam and Adadelta read
 * `.learningRate` on every step.
 */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const o = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (typeof o.setLearningRate === 'function') o.setLearningRate(lr);
  else o.learningRate = lr;
}

/** The rate the optimizer will step with now (for checks: the cached scalar where there is one). */
export function currentLearningRate(optimizer: tf.Optimizer): number {
  const o = optimizer as unknown as { learningRate: number; c?: tf.Scalar };
  return o.c ? -o.c.dataSync()[0] : o.learningRate;
}

/**
 * Hands the optimizer's state (getWeights()) to `use`, then disposes the iteration-count
 * scalar that getWeights() makes fresh each call (the rest are the optimizer's own variables).
 */
export async function withOptimizerWeights<T>(optimizer: tf.Optimizer, use: (state: { name: string; tensor: tf.Tensor }[]) => T | Promise<T>): Promise<T> {
  const state = await optimizer.getWeights();
  try {
    return await use(state);
  } finally {
    tf.dispose(state.filter((w) => !(w.tensor instanceof tf.Variable)).map((w) => w.tensor));
  }
}

type Slot = { originalName: string; variable: tf.Variable };

/**
 * Adadelta as torch.optim.Adadelta computes it. tfjs 4.22's AdadeltaOptimizer divides
 * by the squared-gradient average from *before* this step (zero on the first step), so
 * its first update is a plain SGD step of size lr·g; at the reference's lr 1.0 that
 * wrecks the network and it never learns. State layout (getWeights/setWeights) is
 * unchanged. On wasm and webgpu each weight's step is one fused pass (engine/wasm/simd-kernels.ts,
 * engine/webgpu/optimizer.ts).
 */
export class TorchAdadelta extends tf.AdadeltaOptimizer {
  override applyGradients(grads: tf.NamedTensorMap | { name: string; tensor: tf.Tensor }[]): void {
    const self = this as unknown as { accumulatedGrads: Slot[]; accumulatedUpdates: Slot[]; rho: number; epsilon: number; learningRate: number };
    const names = Array.isArray(grads) ? grads.map((g) => g.name) : Object.keys(grads);
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      self.accumulatedGrads[i] ??= { originalName: `${name}/accum_grad`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      self.accumulatedUpdates[i] ??= { originalName: `${name}/accum_var`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      const gradient = Array.isArray(grads) ? grads[i].tensor : grads[name];
      if (gradient == null) return;
      const squareAvg = self.accumulatedGrads[i].variable;
      const accDelta = self.accumulatedUpdates[i].variable;
      const { rho, epsilon, learningRate } = self;
      if (tf.getBackend() === 'wasm' && gradient.dtype === 'float32') {
        adadeltaOnWasm(value, gradient, squareAvg, accDelta, rho, epsilon, learningRate);
        return;
      }
      if (tf.getBackend() === 'webgpu' && gradient.dtype === 'float32') {
        adadeltaOnWebgpu(value, gradient, squareAvg, accDelta, rho, epsilon, learningRate);
        return;
      }
      tf.tidy(() => {
        const newSquareAvg = tf.add(tf.mul(squareAvg, rho), tf.mul(tf.square(gradient), 1 - rho));
        const delta = tf.mul(tf.div(tf.sqrt(tf.add(accDelta, epsilon)), tf.sqrt(tf.add(newSquareAvg, epsilon))), gradient);
        squareAvg.assign(newSquareAvg);
        accDelta.assign(tf.add(tf.mul(accDelta, rho), tf.mul(tf.square(delta), 1 - rho)));
        value.assign(tf.sub(value, tf.mul(delta, learningRate)));
      });
    });
    (this as unknown as { incrementIterations(): void }).incrementIterations();
  }
}
