/**
 * The learning-rate schedule reaches every optimizer's step: after setLearningRate(lr), a step
 * equals the step of an optimizer built at lr, on the cpu and the wasm backend; and a whole run
 * with --optimizer sgd trains differently in epoch 2 when --gamma changes (on 3c4e18c SGD kept
 * the first epoch's rate: epoch 2 was bit-identical for --gamma 1 and 1e-9).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/engine/backend';
import { memoryProgress } from '../../lib/training/progress';
import { DEFAULTS } from '../../lib/training/options';
import { createOptimizer, currentLearningRate, OptimizerName, setLearningRate } from '../../lib/training/optim';
import { runTraining } from '../../lib/training/run';
import { assertClose, tmpDir } from '../helpers';

const cases: { name: OptimizerName; momentum: number }[] = [
  { name: 'sgd', momentum: 0 }, { name: 'sgd', momentum: 0.9 }, { name: 'adam', momentum: 0 }, { name: 'adadelta', momentum: 0 },
];

/** Two steps of one optimizer on a fresh variable: the values after each. */
function twoSteps(name: OptimizerName, momentum: number, build: number, then?: number): Float32Array[] {
  const v = tf.variable(tf.tensor1d([1, -2, 3, -4, 0.5]), true, `w_${name}_${momentum}_${build}_${then}_${Math.random()}`);
  const opt = createOptimizer(name, build, momentum);
  if (then !== undefined) setLearningRate(opt, then);
  const grad = tf.tensor1d([0.3, -0.1, 0.2, 0.05, -0.4]);
  const out: Float32Array[] = [];
  for (let i = 0; i < 2; i++) {
    opt.applyGradients({ [v.name]: grad });
    out.push(v.dataSync().slice() as Float32Array);
  }
  tf.dispose([v, grad]);
  opt.dispose();
  return out;
}

describe('learning-rate schedule', () => {
  for (const backend of ['cpu', 'wasm'] as const) {
    for (const { name, momentum } of cases) {
      it(`${name}${momentum ? ` (momentum ${momentum})` : ''} on ${backend}: a step after setLearningRate is the step at that rate`, async () => {
        await initBackend(backend);
        const rescheduled = twoSteps(name, momentum, 0.1, 0.001);
        const built = twoSteps(name, momentum, 0.001);
        const original = twoSteps(name, momentum, 0.1);
        rescheduled.forEach((r, i) => assertClose(r, built[i], `step ${i + 1}`, 1e-6));
        // And the rate mattered: the step at 0.1 is many times larger than at 0.001.
        const stepAt = (values: Float32Array[]) => Math.abs(values[0][0] - 1);
        assert.ok(stepAt(original) > 10 * stepAt(rescheduled), `steps ${stepAt(original)} vs ${stepAt(rescheduled)}`);
        const opt = createOptimizer(name, 0.1, momentum);
        setLearningRate(opt, 0.025);
        assert.ok(Math.abs(currentLearningRate(opt) - 0.025) < 1e-9, `rate ${currentLearningRate(opt)}`);
        opt.dispose();
      });
    }
  }

  for (const threads of [1, 2]) {
    it(`sgd with momentum on ${threads} compute thread${threads === 1 ? '' : 's'}: epoch 2 depends on --gamma`, async () => {
      const epoch2 = async (gamma: number) => {
        const out = tmpDir();
        await runTraining({ ...DEFAULTS, backend: 'wasm', model: 'fc', optimizer: 'sgd', momentum: 0.9, lr: 0.05, gamma,
          epochs: 2, limit: 256, computeThreads: threads, out }, memoryProgress([]));
        const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
        return lines[1];
      };
      const kept = await epoch2(1);
      const stopped = await epoch2(1e-9);
      assert.equal(stopped.lr, 0.05 * 1e-9);
      assert.notEqual(kept.train_loss, stopped.train_loss);
      assert.notEqual(kept.test_loss, stopped.test_loss);
    });
  }
});
