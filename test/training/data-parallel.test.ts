/**
 * Data-parallel training (lib/data-parallel.ts, lib/allreduce.ts): the replicas' summed
 * gradients equal the whole batch's, the replicas keep weights identical to the main
 * thread's, and a failing replica is an error, not a hang.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { splitRows } from '../../lib/engine/allreduce';
import { initBackend } from '../../lib/engine/backend';
import { DataParallel, MAX_DEFAULT_THREADS, availableCpus, checkComputeThreads, defaultComputeThreads } from '../../lib/training/data-parallel';
import type { Batch } from '../../lib/data/loader';
import { nllLoss } from '../../lib/training/loss';
import { createModel } from '../../lib/models';
import { createOptimizer } from '../../lib/training/optim';
import { rng } from '../../lib/util/random';
import { memoryProgress } from '../../lib/training/progress';
import { DEFAULTS } from '../../lib/training/options';
import { runTraining } from '../../lib/training/run';
import { evaluate } from '../../lib/training/evaluate';
import { predictSplit } from '../../lib/predict';
import { assertClose, runCli, tmpDir } from '../helpers';

function randomBatch(size: number, seed: number): Batch {
  const random = rng(seed, 'dp-test');
  return {
    index: 0, size,
    images: new Float32Array(size * 784).map(() => random() * 2 - 0.5),
    labels: Int32Array.from({ length: size }, () => Math.floor(random() * 10)),
  };
}

const OPTIMIZER = { name: 'adadelta' as const, lr: 1.0, momentum: 0 };

/** The gradients a step sums (training/step.ts, without the update): this thread's part, then the all-reduce. */
async function parallelGradients(dp: DataParallel, model: tf.LayersModel, batch: Batch) {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const part = dp.scatter(batch);
  const data = tf.tensor4d(part.images, [part.size, 28, 28, 1]);
  const target = tf.tensor1d(part.labels, 'int32');
  const { value, grads } = tf.variableGrads(() => nllLoss(model.apply(data, { training: true }) as tf.Tensor, target, part.weight), vars);
  tf.dispose([data, target]);
  return dp.allReduce(value, grads);
}

function wholeBatchGradients(model: tf.LayersModel, batch: Batch) {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const data = tf.tensor4d(batch.images, [batch.size, 28, 28, 1]);
  const target = tf.tensor1d(batch.labels, 'int32');
  const r = tf.variableGrads(() => nllLoss(model.apply(data, { training: true }) as tf.Tensor, target), vars);
  tf.dispose([data, target]);
  return r;
}

/** Differences allowed between the replicas' summed gradients and the whole batch's. */
const close = (a: Float32Array, b: Float32Array, label: string) => assertClose(a, b, label, 1e-5, 1e-7);

/** Runs `body` with a model, its optimizer and started replicas (synced for epoch 1), then ends them all. */
async function withReplicas(name: string, seed: number, threads: number,
  body: (model: tf.LayersModel, optimizer: tf.Optimizer, dp: DataParallel) => Promise<void>): Promise<void> {
  const model = createModel(name, seed);
  const optimizer = createOptimizer('adadelta', 1.0, 0);
  const dp = await DataParallel.start(model, { threads, model: name, seed, backend: 'wasm', optimizer: OPTIMIZER });
  try {
    await dp.sync(model, optimizer, 1.0, seed, 1);
    await body(model, optimizer, dp);
  } finally {
    await dp.close();
    optimizer.dispose();
    model.dispose();
  }
}

describe('data-parallel compute threads', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('splits a batch into contiguous parts, the first ones a row longer', () => {
    assert.deepEqual(splitRows(64, 2), [[0, 32], [32, 32]]);
    assert.deepEqual(splitRows(25, 2), [[0, 13], [13, 12]]);
    assert.deepEqual(splitRows(2, 3), [[0, 1], [1, 1], [2, 0]]);
  });

  it('picks one thread per available CPU (Slurm\'s allocation first), at most 4, and 1 on tensorflow or for fc', () => {
    assert.equal(availableCpus({ SLURM_CPUS_PER_TASK: '3' }), 3);
    assert.equal(defaultComputeThreads('wasm', { SLURM_CPUS_PER_TASK: '1' }), 1);
    assert.equal(defaultComputeThreads('wasm', { SLURM_CPUS_PER_TASK: '2' }), 2);
    assert.equal(defaultComputeThreads('wasm', { SLURM_CPUS_PER_TASK: '16' }), MAX_DEFAULT_THREADS);
    assert.equal(defaultComputeThreads('tensorflow', { SLURM_CPUS_PER_TASK: '16' }), 1);
    // A model whose step is too short to share out (fc) trains on one thread; the others on several.
    assert.equal(defaultComputeThreads('wasm', { SLURM_CPUS_PER_TASK: '4' }, 'fc'), 1);
    assert.equal(defaultComputeThreads('wasm', { SLURM_CPUS_PER_TASK: '4' }, 'bn-14k'), 4);
    assert.throws(() => checkComputeThreads(2, 'tensorflow'), /--compute-threads 2: the tensorflow backend uses all cores/);
    assert.throws(() => checkComputeThreads(0, 'wasm'), /expected a whole number of at least 1/);
  });

  for (const [threads, size] of [[2, 64], [2, 25], [3, 2]] as const) {
    it(`${threads} threads, batch of ${size}: the summed gradients and loss are the whole batch's`, async () => {
      // cnn-small has no dropout: the same function on every thread.
      await withReplicas('cnn-small', 1, threads, async (model, optimizer, dp) => {
        const batch = randomBatch(size, 7);
        const expected = wholeBatchGradients(model, batch);
        const got = await parallelGradients(dp, model, { ...batch, images: batch.images.slice(), labels: batch.labels.slice() });
        close(got.loss.dataSync() as Float32Array, expected.value.dataSync() as Float32Array, 'loss');
        for (const name of Object.keys(expected.grads)) {
          close(got.grads[name].dataSync() as Float32Array, expected.grads[name].dataSync() as Float32Array, name);
        }
        optimizer.applyGradients(got.grads);
        tf.dispose([got.loss, expected.value, ...Object.values(got.grads), ...Object.values(expected.grads)]);
      });
    });
  }

  it('bn-14k on 2 threads: each part is normalised by its own batch statistics (fused batch norm in every replica)', async () => {
    await withReplicas('bn-14k', 3, 2, async (model, optimizer, dp) => {
      const batch = randomBatch(21, 11);
      // Expected: each part's gradients on this thread, weighted by its share of the rows, summed.
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const expected = splitRows(batch.size, 2).map(([start, size]) => {
        const data = tf.tensor4d(batch.images.slice(start * 784, (start + size) * 784), [size, 28, 28, 1]);
        const target = tf.tensor1d(batch.labels.slice(start, start + size), 'int32');
        const r = tf.variableGrads(() => nllLoss(model.apply(data, { training: true }) as tf.Tensor, target, size / batch.size), vars);
        tf.dispose([data, target]);
        return r;
      });
      const got = await parallelGradients(dp, model, { ...batch, images: batch.images.slice(), labels: batch.labels.slice() });
      const sum = (f: (r: typeof expected[number]) => tf.Tensor) => tf.tidy(() => tf.add(f(expected[0]), f(expected[1])).dataSync() as Float32Array);
      close(got.loss.dataSync() as Float32Array, sum((r) => r.value), 'loss');
      for (const name of Object.keys(got.grads)) close(got.grads[name].dataSync() as Float32Array, sum((r) => r.grads[name]), name);
      const whole = wholeBatchGradients(model, batch);
      assert.notDeepEqual(got.loss.dataSync(), whole.value.dataSync(), 'the whole batch\'s statistics would give another loss');
      optimizer.applyGradients(got.grads);
      tf.dispose([got.loss, whole.value, ...Object.values(whole.grads), ...Object.values(got.grads), ...expected.flatMap((r) => [r.value, ...Object.values(r.grads)])]);
    });
  });

  for (const threads of [2, 3]) it(`keeps every replica's weights bit-identical to the main thread's, step after step (dropout on), ${threads} threads${threads > 2 ? ': each sums its share' : ''}`, async () => {
    await withReplicas('net', 3, threads, async (model, optimizer, dp) => {
      const before = model.getWeights().map((t) => t.dataSync().slice());
      for (let step = 0; step < 3; step++) {
        const { loss, grads } = await parallelGradients(dp, model, randomBatch(16, step));
        optimizer.applyGradients(grads);
        tf.dispose([loss, ...Object.values(grads)]);
      }
      const mine = model.getWeights().map((t) => t.dataSync() as Float32Array);
      assert.notDeepEqual(mine[0], before[0], 'the weights moved');
      const replicas = await dp.replicaWeights();
      assert.equal(replicas.length, threads - 1);
      for (const replica of replicas) {
        assert.equal(replica.length, mine.length);
        replica.forEach((w, i) => assert.deepEqual(w, mine[i], `weight ${i}`));
      }
    });
  });

  for (const [threads, count] of [[2, 300], [3, 130], [4, 64]] as const) {
    it(`the test pass on ${threads} threads (${count} images, batch 64) gives the one-thread result, with the main thread's batch-norm statistics`, async () => {
      await withReplicas('bn-14k', 5, threads, async (model, optimizer, dp) => {
        // Train a few steps: each replica's running statistics drift from the main thread's.
        for (let step = 0; step < 3; step++) {
          const { loss, grads } = await parallelGradients(dp, model, randomBatch(32, 10 + step));
          optimizer.applyGradients(grads);
          tf.dispose([loss, ...Object.values(grads)]);
        }
        const random = rng(7, 'eval-test');
        const split = { count, images: new Uint8Array(count * 784).map(() => Math.floor(random() * 256)), labels: Uint8Array.from({ length: count }, (_, i) => i % 10) };
        const one = await evaluate(model, split, 64);
        const many = await dp.evaluate(model, split, 64);
        assert.equal(many.total, count);
        assert.equal(many.correct, one.correct);
        assert.ok(Math.abs(many.loss - one.loss) <= 1e-9 * Math.abs(one.loss), `loss ${many.loss} vs ${one.loss}`);
      });
    });
  }

  it('predictSplit across 2 and 3 threads gives the one-thread probabilities (bn-14k after training steps, replicas started for the call)', async () => {
    await withReplicas('bn-14k', 6, 2, async (model, optimizer, dp) => {
      for (let step = 0; step < 2; step++) {
        const { loss, grads } = await parallelGradients(dp, model, randomBatch(32, 20 + step));
        optimizer.applyGradients(grads);
        tf.dispose([loss, ...Object.values(grads)]);
      }
      const random = rng(8, 'predict-test');
      const count = 250;
      const split = { count, images: new Uint8Array(count * 784).map(() => Math.floor(random() * 256)), labels: new Uint8Array(count) };
      const one = await predictSplit(model, 'bn-14k', split, { computeThreads: 1, batchSize: 64 });
      assert.equal(one.length, count * 10);
      for (let i = 0; i < count; i += 37) {
        const row = one.subarray(i * 10, i * 10 + 10).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(row - 1) < 1e-4, `row ${i} sums to ${row}`);
      }
      for (const threads of [2, 3]) {
        const many = await predictSplit(model, 'bn-14k', split, { computeThreads: threads, batchSize: 64 });
        assertClose(many, one, `${threads} threads`, 1e-6);
      }
      // The same through the running replicas (as the test pass after an epoch uses them).
      assertClose((await dp.predict(model, split, 64)).map(Math.exp), one, 'dp.predict', 1e-6);
    });
  });

  it('reports a replica that cannot start, naming the thread and the cause', async () => {
    const model = createModel('fc', 1);
    await assert.rejects(
      DataParallel.start(model, { threads: 2, model: 'no-such-model', seed: 1, backend: 'wasm', optimizer: OPTIMIZER }),
      /compute thread 1 failed: unknown model 'no-such-model'/);
    model.dispose();
  });

  describe('training with 2 compute threads', () => {
    const dir = tmpDir();
    let run: Awaited<ReturnType<typeof runTraining>>;
    const lines: string[] = [];
    before(async () => {
      run = await runTraining({ ...DEFAULTS, backend: 'wasm', epochs: 2, limit: 256, logInterval: 2, out: dir, computeThreads: 2 }, memoryProgress(lines));
    });

    it('says so, records it and learns', () => {
      assert.match(lines.join('\n'), /^Compute: 2 threads, data parallel: each batch of 64 is split 32 \+ 32/m);
      assert.deepEqual(run.metrics.map((m) => m.compute_threads), [2, 2]);
      assert.ok(run.metrics[1].test_accuracy > 30, `accuracy ${run.metrics[1].test_accuracy}`);
      assert.equal(run.metrics[0].num_tensors, run.metrics[1].num_tensors, 'no tensor leak');
    });

    it('gives the same result with 1 thread to within float rounding when nothing is random (fc, no dropout)', async () => {
      const base = { ...DEFAULTS, backend: 'wasm' as const, model: 'fc', epochs: 1, limit: 256, logInterval: 100 };
      const one = await runTraining({ ...base, out: tmpDir(), computeThreads: 1 }, memoryProgress([]));
      const two = await runTraining({ ...base, out: tmpDir(), computeThreads: 2 }, memoryProgress([]));
      assert.ok(Math.abs(one.metrics[0].train_loss - two.metrics[0].train_loss) < 1e-4,
        `train loss ${one.metrics[0].train_loss} vs ${two.metrics[0].train_loss}`);
      assert.ok(Math.abs(one.metrics[0].test_accuracy - two.metrics[0].test_accuracy) <= 0.1);
    });
  });

  it('the CLI explains --compute-threads and refuses 0', () => {
    const help = runCli('train', ['--help']);
    assert.match(help.stdout, /--compute-threads <n>/);
    const r = runCli('train', ['--compute-threads', '0']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--compute-threads <n>' argument '0' is invalid\. expected a positive integer/);
  });
});
