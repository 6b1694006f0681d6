/**
 * The shared-memory all-reduce: each replica sums its share of the parameters over every
 * replica's slot (reduce-scatter), then all read the whole sum. Replicas are simulated here
 * in one thread: the sums must be bit-identical to adding whole tensors in replica order.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { allocateStepMemory, shareOf, StepMemory, SUMMED } from '../../lib/engine/allreduce';
import { initBackend } from '../../lib/engine/backend';
import { rng } from '../../lib/util/random';

describe('all-reduce through shared memory', () => {
  before(async () => { await initBackend('wasm'); });

  for (const [replicas, shapes] of [[2, [[3, 4], [5]]], [3, [[7], [2, 2]]], [8, [[5]]], [8, [[64, 33], [33], [10]]]] as [number, number[][]][]) {
    const parameters = shapes.reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);
    it(`${replicas} replicas, ${parameters} parameters (uneven shares${replicas > parameters ? ', more replicas than values' : ''}): the backend's sums, bit for bit`, () => {
      const shared = allocateStepMemory(replicas, parameters);
      const memories = Array.from({ length: replicas }, (_, r) => new StepMemory(shared, r));
      const random = rng(7, 'allreduce');
      for (const step of [0, 1, 2]) {
        const grads = memories.map(() => shapes.map((s) => tf.tensor(Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => random() * 2 - 1), s)));
        memories.forEach((m, r) => m.publish(step, grads[r], r + step));
        assert.ok(memories[0].complete(step));
        assert.ok(!memories[0].complete(step, SUMMED), 'no share summed yet');
        memories.forEach((m) => m.sumShare(step));
        assert.ok(memories[0].complete(step, SUMMED));
        const expected = shapes.map((_, v) => tf.tidy(() => grads.slice(1).reduce((acc, g) => tf.add(acc, g[v]), grads[0][v])));
        for (const m of memories) {
          const got = m.summed(step, shapes);
          const whole = m.sumAll(step, shapes); // the two-replica path: every slot summed by each replica
          got.forEach((t, v) => assert.deepEqual(t.dataSync(), expected[v].dataSync(), `step ${step}, replica ${m.replica}, variable ${v}`));
          whole.forEach((t, v) => assert.deepEqual(t.dataSync(), expected[v].dataSync(), `sumAll: step ${step}, replica ${m.replica}, variable ${v}`));
          tf.dispose([...got, ...whole]);
        }
        assert.equal(memories[1].loss(step), Array.from({ length: replicas }, (_, r) => r + step).reduce((a, b) => a + b, 0));
        tf.dispose([...expected, ...grads.flat()]);
      }
    });
  }

  it('shares cover the parameters once, in whole 16-value blocks (the last takes the rest), empty when replicas outnumber blocks', () => {
    for (const [p, r] of [[3274634, 2], [3274634, 3], [3274634, 16], [100, 3], [5, 8], [0, 2]]) {
      const shares = Array.from({ length: r }, (_, i) => shareOf(p, r, i));
      let next = 0;
      for (const [start, size] of shares) {
        assert.equal(start, next, `${p} over ${r}: contiguous`);
        if (size > 0 && start + size < p) assert.equal(size % 16, 0, `${p} over ${r}: whole blocks`);
        assert.equal(start % 16 === 0 || size === 0, true);
        next = start + size;
      }
      assert.equal(next, p, `${p} over ${r}: all parameters`);
    }
  });

  it('an aborted step wakes a replica waiting for the sums, as an error', () => {
    const shared = allocateStepMemory(2, 4);
    const [a, b] = [new StepMemory(shared, 0), new StepMemory(shared, 1)];
    a.publish(0, [tf.zeros([4])], 0);
    b.publish(0, [tf.zeros([4])], 0);
    a.sumShare(0);
    b.abort();
    assert.throws(() => a.waitBlocking(0, SUMMED), /data-parallel training was stopped/);
  });
});
