/**
 * The own WGSL kernels of engine/webgpu/, each against the cpu backend on random inputs over
 * the zoo's shapes, on whatever Vulkan device this machine has (in CI, Mesa's lavapipe).
 * Skipped, visibly, where Dawn finds no Vulkan device.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/engine/backend';
import { dispatchCount } from '../../lib/engine/webgpu/dispatch';
import { batchNormTraining } from '../../lib/engine/batch-norm';
import { seededDropout } from '../../lib/engine/dropout';
import { conv2dBiasOnWebgpu } from '../../lib/engine/webgpu/conv-kernels';
import { logSoftmaxOnWebgpu } from '../../lib/engine/webgpu/loss-kernels';
import { nllLoss } from '../../lib/training/loss';
import { createModel, MODEL_NAMES, seedDropout } from '../../lib/models';
import { createOptimizer } from '../../lib/training/optim';
import { trainableVariables, trainStep } from '../../lib/training/step';
import { rng } from '../../lib/util/random';
import { assertClose } from '../helpers';

const probe = JSON.parse(spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'lib', 'engine', 'webgpu', 'adapter.js'), '--probe'],
  { encoding: 'utf8', timeout: 60_000 }).stdout.trim().split('\n').pop() || '{"ok":false,"reason":"the probe printed nothing"}') as
  { ok: boolean; reason?: string };
// A slow suite on a software GPU: CI runs it on one Node line (the backend's own tests run on all).
const skip = process.env.MNIST_LAB_SKIP_WEBGPU_KERNELS ? `SKIPPED: MNIST_LAB_SKIP_WEBGPU_KERNELS=${process.env.MNIST_LAB_SKIP_WEBGPU_KERNELS}`
  : probe.ok ? false : `SKIPPED: no WebGPU adapter here (${probe.reason}); CI installs lavapipe: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`;
if (skip) process.stdout.write(`# ${skip}\n`);

/** Random values in [-1, 1) of a shape, the same for every backend. */
function random(shape: number[], seed: number): { shape: number[]; data: Float32Array } {
  return { shape, data: tf.tidy(() => tf.randomUniform(shape, -1, 1, 'float32', seed).dataSync() as Float32Array) };
}

/** `f` on the same inputs on webgpu and on cpu: [webgpu's outputs, cpu's]. */
async function onBoth(inputs: { shape: number[]; data: Float32Array }[], f: (...xs: tf.Tensor[]) => tf.Tensor[] | Promise<tf.Tensor[]>) {
  const results: Float32Array[][] = [];
  for (const backend of ['webgpu', 'cpu']) {
    await tf.setBackend(backend);
    const xs = inputs.map((v) => tf.tensor(v.data, v.shape));
    const outs = await f(...xs);
    results.push(await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array)));
    tf.dispose([...xs, ...outs]);
  }
  await tf.setBackend('webgpu');
  return results;
}

describe('own WebGPU kernels against the cpu backend', { skip }, () => {
  before(async () => {
    await initBackend('webgpu');
  });

  // The Net's and the small models' weights, and sizes that leave a part-filled workgroup.
  for (const shape of [[5, 5, 1, 32], [32], [5, 5, 32, 64], [3136, 1024], [1024, 10], [10], [3, 3, 8, 12], [1000003]]) {
    it(`Adadelta update of a [${shape}] weight: two steps, one dispatch a step`, async () => {
      const inputs = [random(shape, 1), random(shape, 2), random(shape, 3)];
      let counted = 0;
      const [gpu, cpu] = await onBoth(inputs, (w0, g1, g2) => {
        const w = tf.variable(w0, true, `w${shape.join('x')}-${tf.getBackend()}`);
        const optimizer = createOptimizer('adadelta', 1.0, 0);
        optimizer.applyGradients({ [w.name]: g1 }); // the first step also makes the running averages
        const before = dispatchCount();
        optimizer.applyGradients({ [w.name]: g2 }); // the second has running averages to use
        if (tf.getBackend() === 'webgpu') counted = dispatchCount() - before;
        const state = (optimizer as unknown as { accumulatedGrads: { variable: tf.Variable }[]; accumulatedUpdates: { variable: tf.Variable }[] });
        const outs = [w.clone(), state.accumulatedGrads[0].variable.clone(), state.accumulatedUpdates[0].variable.clone()];
        optimizer.dispose();
        w.dispose();
        return outs;
      });
      assert.equal(counted, 1, 'dispatches of one update');
      ['weight', 'squared-gradient average', 'squared-update average'].forEach((what, i) => assertClose(gpu[i], cpu[i], what, 1e-5, 1e-7));
    });
  }

  // A classifier's batch of 10 classes: a part-filled workgroup, the usual batches, and more rows than one workgroup.
  for (const rows of [3, 64, 1000, 1024]) {
    for (const weight of [1, 0.5]) {
      it(`log-softmax and NLL loss of [${rows}, 10], weight ${weight}: values and gradients, one dispatch each way`, async () => {
        const labels = Int32Array.from(random([rows], 7).data, (v) => Math.min(9, Math.floor((v + 1) * 5)));
        let counted = 0;
        const [gpu, cpu] = await onBoth([random([rows, 10], 4), random([rows, 10], 5)], (x, dy) => {
          const target = tf.tensor1d(labels, 'int32');
          const logSoftmax = (t: tf.Tensor) => (tf.getBackend() === 'webgpu' ? logSoftmaxOnWebgpu(t) : tf.logSoftmax(t));
          const before = dispatchCount();
          const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => nllLoss(logSoftmax(t), target, weight))(x);
          if (tf.getBackend() === 'webgpu') counted = dispatchCount() - before;
          // log-softmax's gradient on its own, for an upstream gradient that is not the NLL's one-hot.
          const throughSoftmax = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(logSoftmax(t), dy)))(x);
          const outs = [logSoftmax(x), value, grad, throughSoftmax];
          target.dispose();
          return outs;
        });
        assert.ok(counted >= 4 && counted <= 5, `dispatches of the loss forward and backward: ${counted} (4 own kernels, and the seed gradient's fill)`);
        ['log-softmax', 'loss', 'loss gradient', 'log-softmax gradient'].forEach((what, i) => assertClose(gpu[i], cpu[i], what, 1e-5, 1e-6));
      });
    }
  }

  // ReLU's gradient on the zoo's activations, with exact zeros among the inputs.
  for (const shape of [[4, 28, 28, 32], [64, 1024], [3, 5]]) {
    it(`ReLU's gradient of a [${shape}] activation, in one dispatch`, async () => {
      const x = random(shape, 8);
      x.data.forEach((v, i) => { if (i % 7 === 0) x.data[i] = 0; });
      let counted = 0;
      const [gpu, cpu] = await onBoth([x, random(shape, 9)], (t, dy) => {
        const y = tf.relu(t);
        const before = dispatchCount();
        const dx = tf.grad((u: tf.Tensor) => tf.relu(u))(t, dy);
        if (tf.getBackend() === 'webgpu') counted = dispatchCount() - before;
        return [y, dx];
      });
      assert.equal(counted, 2, 'dispatches of ReLU and its gradient (tfjs: 3)');
      assertClose(gpu[1], cpu[1], 'gradient', 0, 0);
    });
  }

  // A bias's gradient: the sum over every axis but the channels (conv and dense), in any axis
  // order, with and without keepDims; other sums still run tfjs's kernel.
  for (const [shape, axis, keepDims] of [
    [[4, 28, 28, 32], [0, 1, 2], false], [[64, 14, 14, 64], [2, 0, 1], false], [[64, 1024], [0], false],
    [[3, 10], -2, true], [[70001, 3], [0], false], [[4, 6, 5], [1], false], [[4, 6, 5], [0, 1, 2], false],
  ] as [number[], number | number[], boolean][]) {
    it(`sum of a [${shape}] tensor over axes ${JSON.stringify(axis)}${keepDims ? ', keepDims' : ''}`, async () => {
      let shapeOut: number[] = [];
      const [gpu, cpu] = await onBoth([random(shape, 10)], (t) => {
        const out = tf.sum(t, axis, keepDims);
        if (tf.getBackend() === 'webgpu') shapeOut = out.shape;
        else assert.deepEqual(shapeOut, out.shape, 'shape');
        return [out];
      });
      assertClose(gpu[0], cpu[0], 'sum', 1e-5, 1e-4);
    });
  }

  // Max pooling's gradient: the zoo's 2x2 windows (even and odd sizes), windows with padding,
  // overlapping ones (tfjs's kernel), and ties (values rounded to a few levels).
  for (const [shape, size, stride, pad, ties] of [
    [[4, 28, 28, 32], 2, 2, 'valid', false], [[3, 11, 11, 6], 2, 2, 'valid', false], [[2, 7, 7, 3], 2, 2, 'same', false],
    [[2, 10, 10, 4], 3, 3, 'same', false], [[2, 9, 9, 5], 3, 2, 'valid', false], [[4, 14, 14, 8], 2, 2, 'valid', true],
  ] as [number[], number, number, 'valid' | 'same', boolean][]) {
    it(`max pooling's gradient, [${shape}] in windows of ${size} stride ${stride} ${pad}${ties ? ', with ties' : ''}`, async () => {
      const x = random(shape, 11);
      if (ties) x.data.forEach((v, i) => { x.data[i] = Math.round(v * 2); });
      let counted = 0;
      const [gpu, cpu] = await onBoth([x], (t) => {
        const pool = (u: tf.Tensor) => tf.maxPool(u as tf.Tensor4D, size, stride, pad);
        const dy = tf.tidy(() => tf.randomUniform(pool(t).shape, -1, 1, 'float32', 12));
        const before = dispatchCount();
        const dx = tf.grad(pool)(t, dy);
        if (tf.getBackend() === 'webgpu') counted = dispatchCount() - before;
        return [dx];
      });
      if (size === stride) assert.equal(counted, 2, 'dispatches of the pooling and its gradient (tfjs: 3)');
      assertClose(gpu[0], cpu[0], 'gradient', 0, 0);
    });
  }

  // The zoo's convolutions with their biases (5x5 same, 3x3 valid, 1x1): value and the three
  // gradients; the input's gradient is computed only when asked for (never for the data).
  for (const [input, filter, pad] of [
    [[4, 28, 28, 1], [5, 5, 1, 32], 'same'], [[1, 14, 14, 32], [5, 5, 32, 64], 'same'],
    [[3, 28, 28, 1], [3, 3, 1, 32], 'valid'], [[1, 26, 26, 32], [3, 3, 32, 64], 'valid'], [[2, 13, 13, 16], [1, 1, 16, 8], 'valid'],
  ] as [number[], number[], 'same' | 'valid'][]) {
    it(`convolution with bias, [${input}] * [${filter}] ${pad}: value and gradients`, async () => {
      const counted: number[] = [];
      const [gpu, cpu] = await onBoth([random(input, 13), random(filter, 14), random([filter[3]], 15)], (x, w, b) => {
        const conv = (u: tf.Tensor, v: tf.Tensor, c: tf.Tensor) => tf.getBackend() === 'webgpu'
          ? conv2dBiasOnWebgpu(u as tf.Tensor4D, v as tf.Tensor4D, c as tf.Tensor1D, 1, pad)
          : tf.add(tf.conv2d(u as tf.Tensor4D, v as tf.Tensor4D, 1, pad), c);
        const y = conv(x, w, b);
        const dy = tf.tidy(() => tf.randomUniform(y.shape, -1, 1, 'float32', 16));
        let before = dispatchCount();
        const grads = tf.grads(conv)([x, w, b], dy);
        if (tf.getBackend() === 'webgpu') counted.push(dispatchCount() - before);
        before = dispatchCount();
        tf.dispose(tf.grads((v: tf.Tensor, c: tf.Tensor) => conv(x, v, c))([w, b], dy)); // the data's gradient is not needed
        if (tf.getBackend() === 'webgpu') counted.push(dispatchCount() - before);
        return [y, ...grads];
      });
      assert.deepEqual(counted, [4, 3], 'dispatches: forward, and the input, filter and bias gradients; then without the input\'s');
      ['output', 'input gradient', 'filter gradient', 'bias gradient'].forEach((what, i) => assertClose(gpu[i], cpu[i], what, 1e-5, 1e-5));
    });
  }

  // A convolution's filter gradient without a bias (tfjs's Conv2DBackpropFilter, replaced): the
  // zoo's layers, strides and padding, more output channels and filter positions than one tile,
  // a filter as large as its input, a batch long enough for many slices, and one too short to
  // split (its single slice written straight into the result: one dispatch, else two).
  for (const [input, filter, stride, pad] of [
    [[4, 28, 28, 1], [5, 5, 1, 32], 1, 'same'], [[2, 14, 14, 32], [5, 5, 32, 64], 1, 'same'], [[3, 26, 26, 8], [3, 3, 8, 16], 1, 'valid'],
    [[3, 13, 13, 6], [3, 3, 6, 10], 2, 'valid'], [[2, 9, 9, 5], [3, 3, 5, 7], 2, 'same'], [[2, 7, 7, 3], [7, 7, 3, 5], 1, 'valid'],
    [[2, 5, 5, 70], [1, 1, 70, 130], 1, 'valid'], [[1, 4, 4, 2], [3, 3, 2, 3], 1, 'same'],
  ] as [number[], number[], number, 'same' | 'valid'][]) {
    it(`filter gradient of [${input}] * [${filter}] stride ${stride} ${pad}, tiled`, async () => {
      let counted = 0;
      let rows = 0; // the reduction's length: every output position of the batch
      const [gpu, cpu] = await onBoth([random(input, 21), random(filter, 22)], (x, w) => {
        const conv = (v: tf.Tensor) => tf.conv2d(x as tf.Tensor4D, v as tf.Tensor4D, stride, pad);
        const dy = tf.tidy(() => tf.randomUniform(conv(w).shape, -1, 1, 'float32', 23));
        rows = dy.size / filter[3];
        const before = dispatchCount();
        const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy },
          { strides: stride, pad, dataFormat: 'NHWC', filterShape: filter } as unknown as tf.NamedAttrMap) as tf.Tensor;
        if (tf.getBackend() === 'webgpu') counted = dispatchCount() - before;
        const viaGrad = tf.grad(conv)(w, dy); // as backprop calls it
        return [dw, viaGrad];
      });
      assert.equal(counted, rows <= 128 ? 1 : 2, 'dispatches: the tiles, then their sum unless one slice');
      assertClose(gpu[0], cpu[0], 'filter gradient', 1e-5, 1e-5);
      assertClose(gpu[1], cpu[1], 'filter gradient through tf.grad', 1e-5, 1e-5);
    });
  }

  // Dropout with its mask drawn on the GPU: the zoo's dropout shapes and rates (and sizes that
  // leave a part-filled workgroup), value for value the cpu backend's mask, one dispatch each way.
  for (const [shape, rate] of [[[64, 1024], 0.5], [[4, 12, 12, 64], 0.25], [[3, 10], 0.1], [[1000003], 0.5]] as [number[], number][]) {
    it(`seeded dropout of [${shape}] at rate ${rate}: the cpu backend's mask, value and gradient`, async () => {
      const counted: number[] = [];
      const [gpu, cpu] = await onBoth([random(shape, 24), random(shape, 25)], (x, dy) => {
        let before = dispatchCount();
        const y = seededDropout(x, rate, 123456789);
        if (tf.getBackend() === 'webgpu') counted.push(dispatchCount() - before);
        before = dispatchCount();
        const dx = tf.grad((t: tf.Tensor) => seededDropout(t, rate, 123456789))(x, dy);
        if (tf.getBackend() === 'webgpu') counted.push(dispatchCount() - before);
        return [y, dx];
      });
      assert.deepEqual(counted, [1, 2], 'dispatches: forward; forward and backward');
      const dropped = gpu[0].filter((v) => v === 0).length / gpu[0].length;
      if (gpu[0].length >= 1000) assert.ok(Math.abs(dropped - rate) < 0.05, `share dropped: ${dropped}`);
      assertClose(gpu[0], cpu[0], 'output', 0, 0);
      assertClose(gpu[1], cpu[1], 'gradient', 0, 0);
    });
  }

  // Batch norm in training on the zoo's activations, and on values whose mean is large against
  // their spread (the statistics are sums of x − x₀, as on wasm and cpu): value, statistics and
  // the three gradients, two dispatches each way.
  for (const [shape, offset] of [[[4, 26, 26, 8], 0], [[64, 7, 7, 24], 0], [[3, 5], 0], [[2, 11, 11, 16], 1000]] as [number[], number][]) {
    it(`batch norm in training of [${shape}]${offset ? ` around ${offset}` : ''}: values, statistics and gradients`, async () => {
      const channels = shape[shape.length - 1];
      const x = random(shape, 17);
      x.data.forEach((v, i) => { x.data[i] = v + offset; });
      const counted: number[] = [];
      const [gpu, cpu] = await onBoth([x, random([channels], 18), random([channels], 19), random(shape, 20)], (t, gamma, beta, dy) => {
        let before = dispatchCount();
        const { y, mean, variance } = batchNormTraining(t, gamma as tf.Tensor1D, beta as tf.Tensor1D, 1e-5);
        if (tf.getBackend() === 'webgpu') counted.push(dispatchCount() - before);
        before = dispatchCount();
        const grads = tf.grads((u: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => batchNormTraining(u, g as tf.Tensor1D, b as tf.Tensor1D, 1e-5).y)([t, gamma, beta], dy);
        if (tf.getBackend() === 'webgpu') counted.push(dispatchCount() - before);
        return [y, mean, variance, ...grads];
      });
      assert.deepEqual(counted, [2, 4], 'dispatches: forward; forward and backward');
      ['output', 'mean', 'variance', 'input gradient', 'gamma gradient', 'beta gradient'].forEach((what, i) => assertClose(gpu[i], cpu[i], what, 2e-5, 2e-5));
    });
  }

  // Every zoo model, end to end (dropout, batch norm, pooling, loss and the optimizer all on the
  // GPU): the weights after one Adadelta step, running averages included, and the losses of two
  // steps give the cpu backend's. Weights are compared after the first step only: from the
  // second on, a ReLU input within rounding of zero on one backend takes the other side on the
  // other, and the gradients through it part by more than rounding (seen on gap-8k).
  for (const name of MODEL_NAMES) {
    it(`${name}: training steps match the cpu backend`, async () => {
      const batch = 4;
      const random = rng(5, 'images');
      const images = Float32Array.from({ length: batch * 784 }, () => random());
      const labels = Int32Array.from({ length: batch }, (_, i) => (3 * i) % 10);
      const results: { losses: number[]; weights: Float32Array[] }[] = [];
      for (const backend of ['webgpu', 'cpu']) {
        await tf.setBackend(backend);
        const model = createModel(name, 1);
        seedDropout(model, rng(1, 'dropout', 0));
        const optimizer = createOptimizer('adadelta', 1.0, 0);
        const target = { model, optimizer, vars: trainableVariables(model), reducer: { allReduce: async (loss: tf.Scalar, grads: tf.NamedTensorMap) => ({ loss, grads }) } };
        const losses: number[] = [];
        let weights: Float32Array[] = [];
        for (let step = 0; step < 2; step++) {
          const loss = await trainStep(target, { images, labels, size: batch, weight: 1 });
          losses.push((await loss.data())[0]);
          loss.dispose();
          if (step === 0) weights = await Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
        }
        results.push({ losses, weights });
        optimizer.dispose();
        model.dispose();
      }
      await tf.setBackend('webgpu');
      const [gpu, cpu] = results;
      gpu.losses.forEach((loss, i) => assert.ok(Math.abs(loss - cpu.losses[i]) < 1e-5, `step ${i}: webgpu ${loss}, cpu ${cpu.losses[i]}`));
      gpu.weights.forEach((w, i) => assertClose(w, cpu.weights[i], `weight ${i} after the first step`, 1e-5, 1e-6));
    });
  }
});
