import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/engine/backend';
import { createModel, MODEL_NAMES } from '../../lib/models';
import { summarize } from '../../lib/models/summary';
import { nllLoss } from '../../lib/training/loss';
import { architectureMarkdown } from '../../report/build';

/** Parameter counts as PyTorch counts them (the figures). */
const EXPECTED: Record<string, number> = {
  net: 3_274_634, 'pytorch-example': 1_199_882, fc: 101_770, 'cnn-small': 124_670, 'base-14k': 14_620, 'bn-14k': 14_796,
  'gap-8k': 8_018, 'gap-14k': 14_320, 'bn-10k': 10_085,
};

describe('model zoo', () => {
  before(async () => {
    await initBackend('wasm');
  });

  it('has every model of the project', () => {
    assert.deepEqual([...MODEL_NAMES].sort(), Object.keys(EXPECTED).sort());
  });

  for (const [name, params] of Object.entries(EXPECTED)) {
    it(`${name}: ${params.toLocaleString('en-US')} parameters, 10 log-probabilities per image, trains on wasm`, () => {
      const model = createModel(name, 1);
      const s = summarize(model);
      assert.equal(s.totalParams, params);
      assert.deepEqual(s.rows.at(-1)!.outputShape, [-1, 10]);
      const x = tf.randomNormal([3, 28, 28, 1], 0, 1, 'float32', 1);
      const y = tf.tensor1d([1, 2, 3], 'int32');
      const out = model.predict(x) as tf.Tensor;
      assert.deepEqual(out.shape, [3, 10]);
      tf.exp(out).sum(1).dataSync().forEach((v) => assert.ok(Math.abs(v - 1) < 1e-4));
      const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
      const { value, grads } = tf.variableGrads(() => nllLoss(model.apply(x, { training: true }) as tf.Tensor, y), vars);
      assert.ok(Number.isFinite(value.dataSync()[0]));
      assert.equal(Object.keys(grads).length, vars.length);
      tf.dispose([x, y, out, value, ...Object.values(grads)]);
      model.dispose();
    });
  }

  it('bn-10k shows its true count (10,085), not the 9,962 of its published description', () => {
    const s = summarize(createModel('bn-10k', 1));
    assert.match(s.rows.map((r) => r.name).join(' '), /BatchNorm2d/);
    assert.equal(s.totalParams, 10_085);
  });

  for (const name of ['gap-8k', 'bn-10k', 'fc']) {
    it(`documents ${name} from its definition (architecture report text)`, () => {
      const md = architectureMarkdown(name);
      assert.match(md, new RegExp(`${EXPECTED[name].toLocaleString('en-US')} parameters`));
      assert.match(md, /## Receptive fields/);
    });
  }
});
