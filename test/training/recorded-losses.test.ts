/**
 * The same seed gives the same losses as recorded (wasm, embedded data, first 256 training
 * digits, 2 epochs). A change to the training step, the loader's order, dropout seeding or
 * the data-parallel split shows up here.
 * - base-14k and cnn-small (no batch norm, no dropout): recorded on 2026-11-26 from the code
 *   before the fused batch-norm and dropout kernels (commit 0699777), which left them
 *   unchanged; re-recorded later that day when convolutions and their gradients moved to
 *   the SIMD micro-kernels and bias gradients to float64 sums (other summation orders):
 *   losses moved by at most 6e-7 relative, and one of base-14k's near-tie test digits flipped.
 * - net (dropout) and gap-8k (batch norm and dropout): recorded on 2026-11-25 before lib/ was
 *   grouped by concern, re-recorded on 2026-11-26 when dropout masks began to come from the
 *   DropoutMask kernel's own seeded stream and batch norm's running variance became
 *   PyTorch's unbiased one, and again for the convolution kernels (net: 4e-8; gap-8k: 1.6e-4
 *   relative in the second epoch, batch norm amplifying the first differences).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { memoryProgress } from '../../lib/training/progress';
import { DEFAULTS } from '../../lib/training/options';
import { runTraining } from '../../lib/training/run';
import { tmpDir } from '../helpers';

// [train_loss, test_loss, test_correct] per epoch.
const RECORDED: Record<string, [number, number, number][]> = {
  'base-14k/1': [[2.302708148956299, 2.302427490234375, 209], [2.301891803741455, 2.3018902587890624, 271]],
  'cnn-small/2': [[2.2454445362091064, 2.111913818359375, 714], [1.8593177795410156, 1.6204265747070312, 1193]],
  'net/1': [[2.365403413772583, 2.16452099609375, 253], [2.0068764686584473, 1.6426296997070313, 995]],
  'net/2': [[2.3915553092956543, 2.1861591796875, 221], [2.0269343852996826, 1.6438040161132812, 890]],
  'gap-8k/1': [[2.2373218536376953, 2.3014013671875, 225], [2.0675411224365234, 2.31172314453125, 225]],
};

describe('recorded losses', () => {
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
