/**
 * Every kernel engine/wasm/training-kernels.ts installs (and the SIMD kernels of
 * simd-kernels.ts), checked against the cpu backend on random inputs over the shapes,
 * strides and paddings the models use; then the stock tfjs-wasm kernels the zoo's
 * batch-norm and average-pooling models rely on, checked the same way.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/engine/backend';
import { createOptimizer } from '../../lib/training/optim';
import { WASM_TRAINING_KERNELS } from '../../lib/engine/wasm/training-kernels';
import { MODELS, createModel } from '../../lib/models';
import { Conv2d } from '../../lib/models/layers';
import { assertClose } from '../helpers';

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];

async function onBoth<T extends tf.Tensor[]>(inputs: { shape: number[]; seed: number }[], f: (...xs: tf.Tensor[]) => T) {
  const values = inputs.map(({ shape, seed }) => ({ shape, data: tf.randomUniform(shape, -1, 1, 'float32', seed).dataSync() }));
  const results: Float32Array[][] = [];
  for (const backend of ['wasm', 'cpu']) {
    await tf.setBackend(backend);
    const outs = tf.tidy(() => f(...values.map((v) => tf.tensor(v.data, v.shape))));
    results.push(outs.map((t) => t.dataSync() as Float32Array));
    tf.dispose(outs);
  }
  await tf.setBackend('wasm');
  return results;
}


/** Pooling shapes of the models: [label, input shape, window, stride, padding]. */
const poolCases: [string, number[], number, number, 'same' | 'valid'][] = [
  ['2x2/2 (Net)', [4, 28, 28, 32], 2, 2, 'valid'],
  ['2x2/2 same, even size, 36 channels (cnn-small)', [2, 14, 14, 36], 2, 2, 'same'],
  ['2x2/2 odd size (the last row and column in no window)', [2, 7, 7, 5], 2, 2, 'valid'],
  ['2x2/2, 11x11, 36 channels (cnn-small\'s second pool)', [2, 11, 11, 36], 2, 2, 'valid'],
  ['2x2/2, odd height only', [3, 5, 4, 6], 2, 2, 'valid'],
  ['3x3/3 (the loop)', [2, 9, 9, 4], 3, 3, 'valid'],
  ['2x2/2, 6 channels (gap-8k: 4 at a time, then 2 one at a time)', [2, 22, 22, 6], 2, 2, 'valid'],
  ['2x2/2, 10 channels (bn-10k)', [2, 24, 24, 10], 2, 2, 'valid'],
  ['2x2/2, 3 channels (all one at a time)', [2, 4, 6, 3], 2, 2, 'valid'],
  ['3x3/1 same', [2, 9, 9, 4], 3, 1, 'same'],
];

describe('wasm training kernels match the cpu backend', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('are registered for wasm', () => {
    for (const name of WASM_TRAINING_KERNELS) assert.ok(tf.getKernel(name, 'wasm'), name);
  });

  const convCases: [string, number[], number[], number, Pad][] = [
    ['Net conv1 5x5 same', [4, 28, 28, 1], [5, 5, 1, 32], 1, 'same'],
    ['Net conv2 5x5 same', [4, 14, 14, 32], [5, 5, 32, 64], 1, 'same'],
    ['3x3 valid', [3, 12, 12, 8], [3, 3, 8, 16], 1, 'valid'],
    ['1x1 valid', [3, 9, 9, 24], [1, 1, 24, 8], 1, 'valid'],
    ['7x7 valid to 1x1', [2, 7, 7, 10], [7, 7, 10, 10], 1, 'valid'],
    ['3x3 explicit asymmetric padding', [2, 10, 10, 3], [3, 3, 3, 4], 1, [[0, 0], [1, 2], [2, 0], [0, 0]]],
    ['3x3 same stride 2 (fallback paths)', [2, 11, 11, 3], [3, 3, 3, 4], 2, 'same'],
  ];
  for (const [label, xShape, wShape, stride, pad] of convCases) {
    it(`conv2d gradients: ${label}`, async () => {
      const [wasm, cpu] = await onBoth([{ shape: xShape, seed: 1 }, { shape: wShape, seed: 2 }], (x, w) => {
        const loss = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad).square().sum();
        return tf.grads(loss)([x, w]);
      });
      assertClose(wasm[0], cpu[0], `${label} dx`);
      assertClose(wasm[1], cpu[1], `${label} dw`);
    });
  }

  // Every convolution of the zoo (batch of 3): covers the filter-gradient kernel's blocks of
  // 8 and of 4 columns, rows of kw·ci that are not a multiple of 4, padding, 1x1 and 7x7.
  const zooConvs: [string, number[], number[], 'same' | 'valid'][] = [];
  for (const name of Object.keys(MODELS)) {
    const model = createModel(name, 1);
    for (const layer of model.layers) {
      if (!(layer instanceof Conv2d)) continue;
      const input = ((layer.input as tf.SymbolicTensor).shape as number[]).slice(1);
      zooConvs.push([`${name} ${layer.name}`, [3, ...input], [layer.kernelSize, layer.kernelSize, input[2], layer.filters], layer.padding]);
    }
    model.dispose();
  }
  it('sees every convolution of the zoo', () => {
    assert.ok(zooConvs.length >= 40, `${zooConvs.length} convolutions`);
    assert.deepEqual(new Set(zooConvs.map(([label]) => label.split(' ')[0])), new Set(Object.keys(MODELS).filter((m) => m !== 'fc')));
  });
  for (const [label, xShape, wShape, pad] of zooConvs) {
    it(`conv2d and its gradients on the zoo's shapes: ${label} ${xShape.slice(1).join('x')} * ${wShape.join('x')} ${pad}`, async () => {
      const [wasm, cpu] = await onBoth([{ shape: xShape, seed: 11 }, { shape: wShape, seed: 12 }], (x, w) => {
        const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad);
        return [conv(x, w), ...tf.grads((a: tf.Tensor, b: tf.Tensor) => conv(a, b).square().sum())([x, w])];
      });
      assertClose(wasm[0], cpu[0], `${label} y`);
      assertClose(wasm[1], cpu[1], `${label} dx`);
      assertClose(wasm[2], cpu[2], `${label} dw`);
    });
  }
  it('conv2d with a batch whose positions are not a multiple of 4 (the last block repeats its last position)', async () => {
    const [wasm, cpu] = await onBoth([{ shape: [1, 5, 7, 3], seed: 13 }, { shape: [3, 2, 3, 9], seed: 14 }], (x, w) =>
      [tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid')]); // 3x6 = 18 positions, 9 channels: 8 + 1
    assertClose(wasm[0], cpu[0], '18 positions');
  });

  const matCases: [string, number[], number[], boolean, boolean][] = [
    ['dW = xᵀ·dy', [64, 300], [64, 100], true, false],
    ['dx = dy·Wᵀ (wide W: swapped form)', [16, 100], [900, 100], false, true],
    ['A·Bᵀ (transpose B form)', [200, 30], [10, 30], false, true],
    ['Aᵀ·Bᵀ', [30, 20], [40, 30], true, true],
    ['batched Aᵀ·B', [3, 20, 8], [3, 20, 6], true, false],
  ];
  for (const [label, aShape, bShape, ta, tb] of matCases) {
    it(`matMul with transposes: ${label}`, async () => {
      const [wasm, cpu] = await onBoth([{ shape: aShape, seed: 3 }, { shape: bShape, seed: 4 }], (a, b) => [tf.matMul(a, b, ta, tb)]);
      assertClose(wasm[0], cpu[0], label);
    });
  }

  it('fused matMul with bias and activation and a transposed operand', async () => {
    const [wasm, cpu] = await onBoth([{ shape: [32, 50], seed: 5 }, { shape: [20, 50], seed: 6 }, { shape: [20], seed: 7 }],
      (a, b, bias) => [tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeB: true, bias, activation: 'relu' })]);
    assertClose(wasm[0], cpu[0], 'fused');
  });

  for (const c of [8, 6]) {
    it(`max pooling gradient with ties goes to the first maximum of each window, as on cpu (${c} channels)`, async () => {
      const [wasm, cpu] = await onBoth([{ shape: [3, 8, 8, c], seed: 13 }], (x) =>
        [tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid').mul(tf.range(1, 3 * 4 * 4 * c + 1).reshape([3, 4, 4, c])).sum())(tf.round(x))]);
      assertClose(wasm[0], cpu[0], 'ties');
    });
  }

  for (const [label, shape, size, stride, pad] of poolCases) {
    it(`max pooling gradient: ${label}`, async () => {
      const [wasm, cpu] = await onBoth([{ shape, seed: 8 }], (x) =>
        [tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, size, stride, pad).square().sum())(x)]);
      assertClose(wasm[0], cpu[0], label);
    });
  }

  it('max pooling gradient (3x3 windows: the loop) is right when its output grows the wasm memory', () => {
    // Views of the heap taken before an allocation that grows the memory read as empty: the
    // gradient came out all zeros (cnn-small's 11x11 pool at batch 64, when the loop had it).
    const memory = () => (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length;
    const heap = memory();
    const n = Math.ceil((0.45 * heap) / 4 / (9 * 9 * 3));
    const x = tf.randomUniform([n, 9, 9, 3], -1, 1, 'float32', 5);
    const dy = tf.ones([n, 3, 3, 3]);
    const dx = tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 3, 3, 'valid').mul(dy).sum())(x);
    assert.ok(memory() > heap, `the memory grew (${heap} → ${memory()} bytes)`);
    assert.equal(dx.sum().dataSync()[0], n * 3 * 3 * 3, 'each window passes its gradient to one position');
    tf.dispose([x, dy, dx]);
  });

  const sumCases: [string, number[], number | number[], boolean][] = [
    ['conv bias gradient: every axis but the last', [3, 6, 5, 7], [0, 1, 2], false],
    ['dense bias gradient, kept dims', [64, 10], 0, true],
    ['axes given out of order', [2, 3, 9], [1, 0], false],
    ['last axis only (stock kernel)', [4, 6, 5], -1, false],
    ['all axes (stock kernel)', [4, 6, 5], [0, 1, 2], false],
    ['an empty batch: zeros (the stock kernel leaves its output unwritten)', [0, 3, 4], [0, 1], false],
  ];
  for (const [label, shape, axis, keepDims] of sumCases) {
    it(`sum: ${label}`, async () => {
      const [wasm, cpu] = await onBoth([{ shape, seed: 21 }], (x) => [tf.sum(x, axis, keepDims)]);
      assertClose(wasm[0], cpu[0], label);
      const shapes = [];
      for (const backend of ['cpu', 'wasm']) {
        await tf.setBackend(backend);
        shapes.push(tf.tidy(() => tf.sum(tf.zeros(shape), axis, keepDims).shape));
      }
      assert.deepEqual(shapes[1], shapes[0], 'shape');
    });
  }

  it('Adadelta (fused on wasm) matches the cpu backend\'s tensor ops, odd sizes included', async () => {
    const shapes = [[5, 5, 1, 32], [10], [3, 7], [300, 41]];
    const inputs = shapes.flatMap((shape, i) => [{ shape, seed: 20 + i }, { shape, seed: 40 + i }]);
    const [wasm, cpu] = await onBoth(inputs, (...xs) => {
      const vars = shapes.map((_, i) => tf.variable(xs[2 * i], true, `adadelta_test_${tf.getBackend()}_${i}`));
      const optimizer = createOptimizer('adadelta', 0.7, 0);
      for (let step = 1; step <= 3; step++) {
        optimizer.applyGradients(Object.fromEntries(vars.map((v, i) => [v.name, tf.mul(xs[2 * i + 1], step)])));
      }
      const out = vars.map((v) => v.clone());
      tf.dispose(vars);
      optimizer.dispose();
      return out;
    });
    wasm.forEach((w, i) => assertClose(w, cpu[i], `weight ${shapes[i].join('x')} after 3 steps`));
  });

  it('Adadelta on wasm leaves tensors that share a weight\'s data unchanged, and none behind', () => {
    const v = tf.variable(tf.ones([6]), true, 'adadelta_share_test');
    const alias = v.clone(); // shares v's data until v is reassigned
    const optimizer = createOptimizer('adadelta', 1.0, 0);
    const g = tf.fill([6], 0.5);
    optimizer.applyGradients({ [v.name]: g });
    const before = tf.memory().numTensors;
    optimizer.applyGradients({ [v.name]: g });
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(Array.from(alias.dataSync()), [1, 1, 1, 1, 1, 1]);
    assert.ok(v.dataSync()[0] < 1, 'the weight moved');
    tf.dispose([v, alias, g]);
    optimizer.dispose();
  });

  it('clone and same-type cast share the data (no copy); other casts still convert', () => {
    const buffers = () => tf.backend().numDataIds(); // the wasm heap's allocations, not tensors
    const x = tf.tensor([1.5, -2.25, 3], [3]);
    const before = buffers();
    const copies = [x.clone(), tf.cast(x, 'float32')];
    assert.equal(buffers(), before, 'no new data for a clone or a float32 → float32 cast');
    for (const c of copies) assert.equal(c.dataId, x.dataId);
    const asInt = tf.cast(x, 'int32');
    assert.equal(buffers(), before + 1);
    assert.deepEqual(Array.from(asInt.dataSync()), [1, -2, 3]);
    x.dispose(); // the shared data lives on while a tensor holds it
    for (const c of copies) assert.deepEqual(Array.from(c.dataSync()), [1.5, -2.25, 3]);
    tf.dispose([...copies, asInt]);
    assert.equal(buffers(), before - 1, 'freed once the last holder is disposed');
  });

  it('leaves no tensors behind', async () => {
    const x = tf.randomUniform([2, 14, 14, 32], -1, 1, 'float32', 1);
    const w = tf.randomUniform([5, 5, 32, 64], -1, 1, 'float32', 2);
    const f = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same').sum();
    tf.dispose(tf.grads(f)([x, w]));
    const before = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 3; i++) {
      tf.dispose(tf.grads(f)([x, w]));
      tf.dispose(tf.tidy(() => tf.matMul(x.reshape([28, 448]), tf.ones([100, 448]), false, true)));
      tf.dispose(tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid').sum())(x));
    }
    assert.equal(tf.memory().numTensors, before);
    assert.equal(tf.memory().numBytes, bytes);
    tf.dispose([x, w]);
  });
});

describe('stock tfjs-wasm kernels the zoo relies on match the cpu backend (not the project\'s own)', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('none of them is replaced by the project', () => {
    for (const kernel of ['AvgPoolGrad', 'FusedBatchNorm']) assert.ok(!(WASM_TRAINING_KERNELS as readonly string[]).includes(kernel), kernel);
  });

  for (const [label, shape, size, stride, pad] of poolCases) {
    it(`average pooling gradient: ${label}`, async () => {
      const [wasm, cpu] = await onBoth([{ shape, seed: 9 }], (x) =>
        [tf.grad((a: tf.Tensor) => tf.avgPool(a as tf.Tensor4D, size, stride, pad).square().sum())(x)]);
      assertClose(wasm[0], cpu[0], label);
    });
  }

  it('batch norm gradients', async () => {
    const [wasm, cpu] = await onBoth([{ shape: [4, 6, 6, 8], seed: 10 }, { shape: [8], seed: 11 }, { shape: [8], seed: 12 }], (x, scale, offset) => {
      const f = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, [0, 1, 2]);
        return tf.batchNorm(a, mean, variance, o, s, 1e-5).square().sum();
      };
      return tf.grads(f)([x, scale, offset]);
    });
    wasm.forEach((g, i) => assertClose(g, cpu[i], `batch norm grad ${i}`));
  });

});
