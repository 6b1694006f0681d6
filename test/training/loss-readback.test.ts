/**
 * The loss read-back: at once on wasm and cpu, one step behind on a GPU backend, every loss
 * handed back once, in order, and nothing left allocated.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { LossReadback } from '../../lib/training/loss-readback';

describe('LossReadback', () => {
  it('is one step behind on webgpu only', () => {
    assert.equal(LossReadback.lagFor('webgpu'), 1);
    for (const backend of ['wasm', 'cpu', 'tensorflow']) assert.equal(LossReadback.lagFor(backend), 0);
  });

  for (const lag of [0, 1] as const) {
    it(`with lag ${lag}: hands back each step's loss once, in order, and disposes them`, async () => {
      await tf.setBackend('cpu');
      const before = tf.memory().numTensors;
      const readback = new LossReadback(lag);
      const known: (number | undefined)[][] = [];
      for (const [i, value] of [0.5, 0.25, NaN].entries()) {
        const k = await readback.push(tf.scalar(value), i);
        known.push(k ? [k.batchIndex, k.value] : []);
      }
      const last = await readback.flush();
      if (last) known.push([last.batchIndex, last.value]);
      const expected = [[0, 0.5], [1, 0.25], [2, NaN]];
      assert.deepEqual(known, lag === 0 ? expected : [[], ...expected]);
      assert.equal(await readback.flush(), undefined, 'flushed twice');
      assert.equal(tf.memory().numTensors, before, 'tensors left');
    });
  }

  it('dispose() drops a loss still held', async () => {
    await tf.setBackend('cpu');
    const before = tf.memory().numTensors;
    const readback = new LossReadback(1);
    await readback.push(tf.scalar(1), 0);
    readback.dispose();
    assert.equal(tf.memory().numTensors, before);
  });
});
