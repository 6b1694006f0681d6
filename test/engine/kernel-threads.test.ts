/**
 * Split operations (engine/wasm/kernel-pool.ts): tfjs's wasm backend on a shared memory, each
 * threaded kernel against the same kernel on one thread over the zoo's shapes at 1, 2, 3 and 8
 * threads (uneven splits, more threads than images), a kernel failing in a helper thread as an
 * error, the threads shut down with the run, and training steps matching one thread's.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/engine/backend';
import { importSharedMemory } from '../../lib/engine/wasm/shared-memory';
import { KernelPool } from '../../lib/engine/wasm/kernel-pool';
import { kernelModule, kernelThreads, kernelThreadsAvailable, memoryOf, setKernelThreads, WasmBackend } from '../../lib/engine/wasm/simd-kernels';
import { DataParallel } from '../../lib/training/data-parallel';
import { createModel, seedDropout } from '../../lib/models';
import { createOptimizer } from '../../lib/training/optim';
import { trainableVariables, trainStep } from '../../lib/training/step';
import { memoryProgress } from '../../lib/training/progress';
import { DEFAULTS } from '../../lib/training/options';
import { runTraining } from '../../lib/training/run';
import { rng } from '../../lib/util/random';
import { assertClose, tmpDir } from '../helpers';

type Pad = 'same' | 'valid';

/** Runs `f` on one thread and on `threads` kernel threads over the same random inputs. */
async function oneAndMany(threads: number, shapes: number[][], f: (...xs: tf.Tensor[]) => tf.Tensor[]): Promise<[Float32Array[], Float32Array[]]> {
  const inputs = shapes.map((shape, i) => tf.randomUniform(shape, -1, 1, 'float32', 7 + i));
  const run = () => tf.tidy(() => f(...inputs)).map((t) => {
    const data = t.dataSync() as Float32Array;
    t.dispose();
    return data;
  });
  await setKernelThreads(1);
  const one = run();
  await setKernelThreads(threads);
  try {
    return [one, run()];
  } finally {
    await setKernelThreads(1);
    tf.dispose(inputs);
  }
}

/** Convolutions of the zoo: [label, input, filter, padding]. Batches of 5 and 7 split unevenly; 1 image is never split. */
const convCases: [string, number[], number[], Pad][] = [
  ['Net conv1 5x5 same', [5, 28, 28, 1], [5, 5, 1, 32], 'same'],
  ['Net conv2 5x5 same', [7, 14, 14, 32], [5, 5, 32, 64], 'same'],
  ['gap-8k 3x3 valid, 6 -> 16', [5, 26, 26, 6], [3, 3, 6, 16], 'valid'],
  ['bn-14k 3x3 valid, 16 -> 20', [3, 24, 24, 16], [3, 3, 16, 20], 'valid'],
  ['1x1 valid, 20 -> 6', [7, 22, 22, 20], [1, 1, 20, 6], 'valid'],
  ['one image (nothing to split)', [1, 28, 28, 8], [3, 3, 8, 16], 'same'],
];

/** Matrix products of the zoo's dense layers and their gradients: [label, a, b, transposeA, transposeB]. */
const productCases: [string, number[], number[], boolean, boolean][] = [
  ['Net fc1 forward (64 rows: stays on XNNPACK)', [64, 3136], [3136, 1024], false, false],
  ['Net fc1 weight gradient xT·dy', [64, 3136], [64, 1024], true, false],
  ['Net fc1 input gradient dy·WT', [64, 1024], [3136, 1024], false, true],
  ['fc2 forward, uneven rows', [37, 1024], [1024, 10], false, false],
  ['many rows, 7 columns', [4099, 96], [96, 7], false, false],
];

describe('split operations (kernel threads on the wasm backend\'s shared memory)', () => {
  before(async () => {
    await initBackend('wasm');
  });
  after(async () => {
    await setKernelThreads(1);
  });

  it('loads tfjs\'s wasm module on a shared memory', () => {
    assert.ok(kernelThreadsAvailable());
    const memory = memoryOf(tf.backend() as unknown as WasmBackend);
    assert.ok(memory.buffer instanceof SharedArrayBuffer);
    // A module without a memory of its own is left alone (the backend then loads as shipped).
    const noMemory = Uint8Array.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    assert.equal(importSharedMemory(noMemory), undefined);
  });

  for (const threads of [1, 2, 3, 8]) {
    for (const [label, xShape, wShape, pad] of convCases) {
      it(`${label}, ${threads} threads: forward, input and filter gradients as on one thread`, async () => {
        const [one, many] = await oneAndMany(threads, [xShape, wShape], (x, w) => {
          const y = tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, pad);
          const [dx, dw] = tf.grads((a, b) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad).square().sum())([x, w]);
          return [y, dx, dw];
        });
        assertClose(many[0], one[0], `${label} forward`, 0); // each image by one thread: the same sums
        assertClose(many[1], one[1], `${label} input gradient`, 0);
        assertClose(many[2], one[2], `${label} filter gradient`, 1e-5); // the threads' partial sums added in thread order
      });
    }
    for (const [label, aShape, bShape, transposeA, transposeB] of productCases) {
      it(`${label}, ${threads} threads: as on one thread`, async () => {
        const [one, many] = await oneAndMany(threads, [aShape, bShape], (a, b) => [tf.matMul(a, b, transposeA, transposeB)]);
        assertClose(many[0], one[0], label, 1e-5);
      });
    }
  }

  it('a dense layer\'s fused bias and ReLU on the threads, as on one', async () => {
    const [one, many] = await oneAndMany(2, [[2048, 64], [64, 32], [32]], (a, b, bias) =>
      [tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, bias, activation: 'relu' })]);
    assertClose(many[0], one[0], 'fused matMul', 1e-6);
    assert.ok(many[0].some((v) => v === 0) && many[0].some((v) => v > 0), 'ReLU applied');
  });

  it('a kernel that fails in a helper thread fails the call with its message, and the pool goes on', async () => {
    const memory = memoryOf(tf.backend() as unknown as WasmBackend);
    const pool = await KernelPool.start(2, memory, kernelModule(true), () => undefined);
    try {
      const beyond = memory.buffer.byteLength + 4096; // a read past the end of the memory traps
      assert.throws(() => pool.run('conv2d_valid', [[0, 0, 0, 0], [beyond, beyond, beyond, 1, 3, 3, 1, 1, 1, 1, 3, 3]]),
        /kernel thread 1 failed in conv2d_valid: .*out of bounds/);
      pool.run('conv2d_valid', [[0], [0, 0, 0, 0, 3, 3, 1, 1, 1, 1, 3, 3]]); // the next call runs (no images: nothing written)
    } finally {
      await pool.close();
    }
    assert.throws(() => pool.run('conv2d_valid', [[0]]), /the kernel threads were shut down/);
  });

  it('training steps with split operations match one thread\'s, the same every time for a thread count', async () => {
    const losses = async (threads: number) => {
      const model = createModel('bn-14k', 3);
      seedDropout(model, rng(3, 'dropout'));
      const optimizer = createOptimizer('adadelta', 1.0, 0);
      const parallel = await DataParallel.start(model, { threads, split: 'ops', model: 'bn-14k', seed: 3, backend: 'wasm',
        optimizer: { name: 'adadelta', lr: 1, momentum: 0 } });
      assert.equal(kernelThreads(), threads);
      const random = rng(5, 'batch');
      const batch = { index: 0, size: 19, images: new Float32Array(19 * 784).map(() => random()), labels: Int32Array.from({ length: 19 }, (_, i) => i % 10) };
      const out: number[] = [];
      try {
        for (let i = 0; i < 3; i++) {
          const loss = await trainStep({ model, optimizer, vars: trainableVariables(model), reducer: parallel }, parallel.scatter(batch));
          out.push((await loss.data())[0]);
          loss.dispose();
        }
      } finally {
        await parallel.close();
        optimizer.dispose();
        model.dispose();
      }
      assert.equal(kernelThreads(), 1, 'the kernel threads stop with the run');
      return Float32Array.from(out);
    };
    const one = await losses(1);
    const three = await losses(3);
    assertClose(three, one, 'losses on 3 threads vs 1', 1e-4);
    assert.deepEqual(await losses(3), three, 'the same losses again on 3 threads');
  });

  it('a run with --compute-split ops says so and records it', async () => {
    const lines: string[] = [];
    const dir = tmpDir('split-ops-');
    const run = await runTraining({ ...DEFAULTS, model: 'cnn-small', backend: 'wasm', epochs: 1, limit: 128, out: dir, computeThreads: 2, computeSplit: 'ops' },
      memoryProgress(lines));
    assert.ok(lines.some((l) => /^Compute: 2 threads, split operations: each convolution and matrix product/.test(l)), lines.join('\n'));
    const config = JSON.parse(fs.readFileSync(path.join(run.outDir, 'config.json'), 'utf8')) as { compute_threads: number; compute_split: string };
    assert.deepEqual([config.compute_threads, config.compute_split], [2, 'ops']);
    assert.ok(run.metrics[0].test_accuracy > 0.1);
    assert.equal(kernelThreads(), 1);
  });

  it('refuses split operations where there are no kernel threads (the cpu backend)', async () => {
    const model = createModel('fc', 1);
    await assert.rejects(DataParallel.start(model, { threads: 2, split: 'ops', model: 'fc', seed: 1, backend: 'cpu', optimizer: { name: 'adadelta', lr: 1, momentum: 0 } }),
      /--compute-split ops splits the wasm backend's kernels across threads; the cpu backend cannot: use --compute-split batch/);
    model.dispose();
  });
});
