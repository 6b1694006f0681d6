/**
 * The batch-norm training kernels (engine/batch-norm.ts) and the dropout mask
 * (engine/dropout.ts), on every zoo model's shapes: the wasm kernels and the cpu ones
 * against tfjs's own tf.moments + tf.batchNorm differentiated by tfjs on the cpu backend,
 * and against the formulas written out here; the layers' running statistics against
 * PyTorch's rule; and models with batch norm training on one and two compute threads.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/engine/backend';
import { BATCH_NORM_KERNELS, batchNormTraining } from '../../lib/engine/batch-norm';
import { DROPOUT_MASK_KERNEL, dropoutMask, fillDropoutMask, seededDropout } from '../../lib/engine/dropout';
import { MODELS, createModel } from '../../lib/models';
import { BatchNorm2d, SeededDropout } from '../../lib/models/layers';
import { assertClose } from '../helpers';

/** [model, layer input shape] for every batch-norm and dropout layer of the zoo, batch of 3. */
function zooShapes(kind: typeof BatchNorm2d | typeof SeededDropout): [string, number[]][] {
  const shapes: [string, number[]][] = [];
  for (const name of Object.keys(MODELS)) {
    const model = createModel(name, 1);
    for (const layer of model.layers) {
      if (layer instanceof kind) shapes.push([name, [3, ...((layer.input as tf.SymbolicTensor).shape as number[]).slice(1)]]);
    }
    model.dispose();
  }
  return shapes;
}

function random(shape: number[], seed: number, low = -2, high = 3): Float32Array {
  return tf.tidy(() => tf.randomUniform(shape, low, high, 'float32', seed).dataSync() as Float32Array);
}

interface BnCase { x: Float32Array; gamma: Float32Array; beta: Float32Array; dy: Float32Array; shape: number[] }

/** y and the gradients of Σ y·dy in x, γ, β, from `f` on the current backend. */
function run(f: (x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D) => tf.Tensor, c: BnCase): Float32Array[] {
  return tf.tidy(() => {
    const C = c.gamma.length;
    const [x, g, b, dy] = [tf.tensor(c.x, c.shape), tf.tensor1d(c.gamma), tf.tensor1d(c.beta), tf.tensor(c.dy, c.shape)];
    const y = f(x, g, b);
    const grads = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(f(xi, gi as tf.Tensor1D, bi as tf.Tensor1D), dy)))([x, g, b]);
    assert.deepEqual(grads[1].shape, [C]);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

const fused = (x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D) => batchNormTraining(x, g, b, 1e-5).y;
const tfjsOwn = (x: tf.Tensor, g: tf.Tensor1D, b: tf.Tensor1D) => {
  const { mean, variance } = tf.moments(x, x.shape.slice(0, -1).map((_, i) => i));
  return tf.batchNorm(x, mean, variance, b, g, 1e-5);
};

/** The formulas, in float64: y = x̂γ + β; dβ = Σdy; dγ = Σdy·x̂; dx = γ/σ·(dy − mean(dy) − x̂·mean(dy·x̂)). */
function formulas(c: BnCase): Float64Array[] {
  const C = c.gamma.length;
  const M = c.x.length / C;
  const out = [new Float64Array(c.x.length), new Float64Array(c.x.length), new Float64Array(C), new Float64Array(C)];
  for (let ch = 0; ch < C; ch++) {
    let mean = 0;
    for (let r = 0; r < M; r++) mean += c.x[r * C + ch] / M;
    let variance = 0;
    for (let r = 0; r < M; r++) variance += (c.x[r * C + ch] - mean) ** 2 / M;
    const sigma = Math.sqrt(variance + 1e-5);
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let r = 0; r < M; r++) {
      const xHat = (c.x[r * C + ch] - mean) / sigma;
      out[0][r * C + ch] = xHat * c.gamma[ch] + c.beta[ch];
      sumDy += c.dy[r * C + ch];
      sumDyXhat += c.dy[r * C + ch] * xHat;
    }
    out[2][ch] = sumDyXhat;
    out[3][ch] = sumDy;
    for (let r = 0; r < M; r++) {
      const xHat = (c.x[r * C + ch] - mean) / sigma;
      out[1][r * C + ch] = (c.gamma[ch] / sigma) * (c.dy[r * C + ch] - sumDy / M - xHat * sumDyXhat / M);
    }
  }
  return out;
}

describe('batch norm in training: fused kernels', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('are registered for wasm and cpu', () => {
    for (const backend of ['wasm', 'cpu']) {
      for (const name of [BATCH_NORM_KERNELS.forward, BATCH_NORM_KERNELS.backward, DROPOUT_MASK_KERNEL]) assert.ok(tf.getKernel(name, backend), `${name} on ${backend}`);
    }
  });

  const shapes = zooShapes(BatchNorm2d);
  it('the zoo has batch-norm layers to check', () => {
    assert.deepEqual([...new Set(shapes.map(([m]) => m))], ['bn-14k', 'gap-8k', 'gap-14k', 'bn-10k']);
  });

  shapes.forEach(([model, shape], i) => {
    it(`${model} [${shape}]: wasm and cpu kernels agree with tfjs's own ops on cpu and with the formulas`, async () => {
      const C = shape[shape.length - 1];
      const c: BnCase = { shape, x: random(shape, 10 + i), gamma: random([C], 20 + i, 0.5, 1.5), beta: random([C], 30 + i), dy: random(shape, 40 + i, -1, 1) };
      await tf.setBackend('cpu');
      const reference = run(tfjsOwn, c);
      const onCpu = run(fused, c);
      await tf.setBackend('wasm');
      const onWasm = run(fused, c);
      const exact = formulas(c).map((a) => Float32Array.from(a));
      const names = ['y', 'dx', 'dgamma', 'dbeta'];
      names.forEach((name, k) => {
        assertClose(onWasm[k], reference[k], `wasm ${name} vs tfjs`, 1e-3, 1e-4);
        assertClose(onCpu[k], reference[k], `cpu ${name} vs tfjs`, 1e-3, 1e-4);
        assertClose(onWasm[k], exact[k], `wasm ${name} vs formula`, 1e-3, 1e-4);
      });
    });
  });

  it('keeps its precision when the mean is large against the spread (values 1000 ± 0.01), on wasm and cpu', async () => {
    const shape = [4, 6, 6, 5];
    const x = random(shape, 50, -0.01, 0.01).map((v) => 1000 + v);
    const c: BnCase = { shape, x, gamma: random([5], 51, 0.5, 1.5), beta: random([5], 52), dy: random(shape, 53, -1, 1) };
    const exact = formulas(c).map((a) => Float32Array.from(a));
    for (const backend of ['wasm', 'cpu']) {
      await tf.setBackend(backend);
      const variance = tf.tidy(() => batchNormTraining(tf.tensor(x, shape), tf.tensor1d(c.gamma), tf.tensor1d(c.beta), 1e-5).variance.dataSync() as Float32Array);
      for (let ch = 0; ch < 5; ch++) {
        const values = Array.from({ length: x.length / 5 }, (_, r) => x[r * 5 + ch]);
        const mean = values.reduce((a, b) => a + b, 0) / values.length;
        const expected = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
        assert.ok(Math.abs(variance[ch] - expected) <= 1e-3 * expected, `${backend} channel ${ch}: variance ${variance[ch]}, exact ${expected}`);
      }
      const [y, dx, dGamma, dBeta] = run(fused, c);
      assertClose(y, exact[0], `${backend} y`, 1e-3, 1e-3);
      assertClose(dx, exact[1], `${backend} dx`, 1e-3, 1e-3);
      // dγ = invStd·Σdy·(x − mean) uses the mean as saved in float32 (as PyTorch does): its rounding
      // (3e-5 at 1000) against a spread of 0.006 costs a few parts in a thousand here.
      assertClose(dGamma, exact[2], `${backend} dgamma`, 1e-2, 1e-3);
      assertClose(dBeta, exact[3], `${backend} dbeta`, 1e-3, 1e-3);
    }
    await tf.setBackend('wasm');
  });

  it('fails the comparison when the gradient is wrong (the check can fail)', async () => {
    const shape = [3, 5, 5, 4];
    const c: BnCase = { shape, x: random(shape, 1), gamma: random([4], 2, 0.5, 1.5), beta: random([4], 3), dy: random(shape, 4, -1, 1) };
    const [, dx] = run(fused, c);
    const exact = Float32Array.from(formulas(c)[1]);
    exact[7] += 0.01;
    assert.throws(() => assertClose(dx, exact, 'dx', 1e-3, 1e-4));
  });

  it("the layer keeps PyTorch's running statistics: momentum 0.1, unbiased variance; test time uses them", () => {
    const layer = new BatchNorm2d();
    const shape = [4, 3, 3, 2];
    const xs = random(shape, 5);
    const x = tf.tensor(xs, shape);
    tf.tidy(() => layer.apply(x, { training: true }) as tf.Tensor);
    tf.tidy(() => layer.apply(x, { training: true }) as tf.Tensor);
    const [, , movingMean, movingVar] = layer.getWeights().map((w) => w.dataSync() as Float32Array);
    const M = xs.length / 2;
    for (let c = 0; c < 2; c++) {
      const values = Array.from({ length: M }, (_, r) => xs[r * 2 + c]);
      const mean = values.reduce((a, b) => a + b, 0) / M;
      const unbiased = values.reduce((a, b) => a + (b - mean) ** 2, 0) / (M - 1);
      // Two updates from (0, 1): r = 0.9·(0.9·r0 + 0.1·s) + 0.1·s.
      assert.ok(Math.abs(movingMean[c] - 0.19 * mean) < 1e-5, `running mean ${movingMean[c]} vs ${0.19 * mean}`);
      assert.ok(Math.abs(movingVar[c] - (0.81 + 0.19 * unbiased)) < 1e-5, `running var ${movingVar[c]} vs ${0.81 + 0.19 * unbiased}`);
    }
    const y = tf.tidy(() => (layer.apply(x, { training: false }) as tf.Tensor).dataSync());
    assert.ok(Math.abs(y[1] - (xs[1] - movingMean[1]) / Math.sqrt(movingVar[1] + 1e-5)) < 1e-5, 'test time normalises by the running statistics');
    x.dispose();
  });
});

describe('dropout mask', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('drops close to the rate, scales the rest by 1/(1-rate), and the same seed gives the same mask on wasm and cpu', async () => {
    for (const rate of [0.1, 0.25, 0.5]) {
      const onWasm = tf.tidy(() => dropoutMask([100, 1000], rate, 42).dataSync() as Float32Array);
      await tf.setBackend('cpu');
      const onCpu = tf.tidy(() => dropoutMask([100, 1000], rate, 42).dataSync() as Float32Array);
      await tf.setBackend('wasm');
      assert.deepEqual(onWasm, onCpu);
      const dropped = onWasm.filter((v) => v === 0).length / onWasm.length;
      assert.ok(Math.abs(dropped - rate) < 0.005, `rate ${rate}: dropped ${dropped}`);
      assert.ok(onWasm.every((v: number) => v === 0 || Math.abs(v - 1 / (1 - rate)) < 1e-6));
      const other = new Float32Array(onWasm.length);
      fillDropoutMask(other, rate, 43);
      assert.notDeepEqual(other, onWasm, 'another seed, another mask');
    }
  });

  it('the wasm kernel (four draws at a time) gives the one-at-a-time stream, its last n mod 4 values too', async () => {
    for (const size of [1, 3, 4, 5, 105, 1027]) {
      const onWasm = tf.tidy(() => dropoutMask([size], 0.3, 0x7fffffff).dataSync() as Float32Array);
      const reference = new Float32Array(size);
      fillDropoutMask(reference, 0.3, 0x7fffffff);
      assert.deepEqual(onWasm, reference, `size ${size}`);
    }
  });

  for (const [model, shape] of zooShapes(SeededDropout)) {
    it(`${model} [${shape}]: forward is x·mask, the gradient dy·mask`, () => {
      tf.tidy(() => {
        const x = tf.tensor(random(shape, 7), shape);
        const mask = dropoutMask(shape, 0.1, 9).dataSync() as Float32Array;
        const y = seededDropout(x, 0.1, 9).dataSync() as Float32Array;
        const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(seededDropout(a, 0.1, 9), 2)))(x).dataSync() as Float32Array;
        const xs = x.dataSync() as Float32Array;
        assertClose(y, xs.map((v, i) => v * mask[i]), 'y', 1e-6);
        assertClose(dx, mask.map((m) => 2 * m), 'dx', 1e-6);
      });
    });
  }
});
