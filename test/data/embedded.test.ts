import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { describe, it } from 'node:test';
import { EMBEDDED_TEST_COUNT, stratifiedQuotas } from '../../lib/data/embedded';
import { limitTrain, loadEmbedded } from '../../lib/data/dataset';
import { tmpDir } from '../helpers';

const classCounts = (labels: Uint8Array) => {
  const c = new Array(10).fill(0);
  labels.forEach((l) => c[l]++);
  return c;
};

describe('embedded default data', () => {
  const data = loadEmbedded(tmpDir());

  it('splits the 10,000 digits into 8,000 train and 2,000 held-out', () => {
    assert.equal(data.train.count, 8000);
    assert.equal(data.test.count, EMBEDDED_TEST_COUNT);
    assert.match(data.note, /NOT the official MNIST test set/);
  });

  it('is stratified by class: each class holds 20% (±1) of its digits out', () => {
    const train = classCounts(data.train.labels);
    const test = classCounts(data.test.labels);
    for (let c = 0; c < 10; c++) {
      const expected = ((train[c] + test[c]) * EMBEDDED_TEST_COUNT) / 10000;
      assert.ok(Math.abs(test[c] - expected) <= 1, `class ${c}: ${test[c]} held out, expected about ${expected}`);
    }
  });

  it('never puts the same digit in both splits, and is the same on every machine', () => {
    const hash = (images: Uint8Array, i: number) => crypto.createHash('sha1').update(images.subarray(i * 784, (i + 1) * 784)).digest('hex');
    const trainHashes = new Set(Array.from({ length: data.train.count }, (_, i) => hash(data.train.images, i)));
    let shared = 0;
    for (let i = 0; i < data.test.count; i++) if (trainHashes.has(hash(data.test.images, i))) shared++;
    assert.ok(shared <= 2, `${shared} held-out digits also in train`); // MNIST has a handful of exact duplicates
    const again = loadEmbedded(tmpDir());
    assert.deepEqual(again.test.labels, data.test.labels);
  });

  it('mixes the classes so that --limit keeps every digit', () => {
    const limited = limitTrain(data, 200);
    assert.equal(limited.train.count, 200);
    assert.ok(classCounts(limited.train.labels).every((n) => n >= 8));
  });

  it('quotas sum to the total (largest remainder)', () => {
    assert.deepEqual(stratifiedQuotas([3, 3, 3], 4), [2, 1, 1]);
    const q = stratifiedQuotas([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978], 2000);
    assert.equal(q.reduce((a, b) => a + b, 0), 2000);
  });
});
