/**
 * The same seed gives the same losses as before the code was reorganised: values recorded
 * on 2026-11-25 (wasm, embedded data, first 256 training digits, 2 epochs) from the code as
 * it stood before lib/ was grouped by concern. A change to the training step, the loader's
 * order, dropout seeding or the data-parallel split shows up here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryProgress } from '../../lib/training/progress';
import { DEFAULTS } from '../../lib/training/options';
import { runTraining } from '../../lib/training/run';
import { tmpDir } from '../helpers';

// [train_loss, test_loss, test_correct] per epoch.
const RECORDED: Record<string, [number, number, number][]> = {
  'net/1': [[2.386744499206543, 2.15472021484375, 200], [2.0076680183410645, 1.4300573120117188, 1034]],
  'net/2': [[2.372605323791504, 2.1167222900390623, 361], [1.9347909688949585, 1.3782484130859376, 1014]],
  'gap-8k/1': [[2.247713565826416, 2.3012911376953125, 225], [2.054929494857788, 2.311493408203125, 225]],
};

describe('losses recorded before the restructure', () => {
  for (const [key, expected] of Object.entries(RECORDED)) {
    const [model, threads] = key.split('/');
    it(`${model} on ${threads} compute thread(s), seed 1`, async () => {
      const run = await runTraining({ ...DEFAULTS, model, backend: 'wasm', epochs: 2, limit: 256, logInterval: 2, out: tmpDir(), computeThreads: Number(threads) },
        memoryProgress([]));
      const got = run.metrics.map((m) => [m.train_loss, m.test_loss, m.test_correct]);
      got.forEach(([train, test, correct], i) => {
        const [eTrain, eTest, eCorrect] = expected[i];
        assert.ok(Math.abs(train - eTrain) <= 1e-6 * eTrain, `${key} epoch ${i + 1} train loss ${train}, recorded ${eTrain}`);
        assert.ok(Math.abs(test - eTest) <= 1e-6 * eTest, `${key} epoch ${i + 1} test loss ${test}, recorded ${eTest}`);
        assert.equal(correct, eCorrect, `${key} epoch ${i + 1} correct`);
      });
    });
  }
});
