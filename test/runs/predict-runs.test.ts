import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { loadEmbedded } from '../../lib/data/dataset';
import { grayPng } from '../../lib/notebook/display';
import { runCli, tmpDir } from '../helpers';

describe('predict and runs (CLI)', () => {
  const root = tmpDir('runs-');
  const runA = path.join(root, 'a');
  const runB = path.join(root, 'b');

  before(() => {
    for (const [dir, seed] of [[runA, '1'], [runB, '2']]) {
      const r = runCli('train', ['--epochs', '2', '--limit', '640', '--backend', 'wasm', '--seed', seed, '--out', dir]);
      assert.equal(r.status, 0, r.stderr);
    }
  });

  it('predicts a test digit by index, with its true label and ten probabilities', () => {
    const r = runCli('predict', ['--checkpoint', path.join(runA, 'best.ckpt'), '--index', '0', '--backend', 'wasm']);
    assert.equal(r.status, 0, r.stderr);
    const truth = loadEmbedded().test.labels[0];
    assert.match(r.stdout, new RegExp(`Prediction: \\d with probability [\\d.]+% \\(true label ${truth}\\)`));
    assert.equal((r.stdout.match(/^ {2}\d: +[\d.]+%/gm) ?? []).length, 10);
  });

  it('reads any PNG (larger, dark digit on white) as the model would see the digit', () => {
    const test = loadEmbedded().test;
    const png = path.join(root, 'digit.png');
    fs.writeFileSync(png, grayPng(test.images.subarray(0, 784), 28, 28, 3)); // 84x84, inverted
    const fromPng = runCli('predict', ['--checkpoint', path.join(runA, 'best.ckpt'), '--image', png, '--backend', 'wasm']);
    const fromIndex = runCli('predict', ['--checkpoint', path.join(runA, 'best.ckpt'), '--index', '0', '--backend', 'wasm']);
    assert.equal(fromPng.status, 0, fromPng.stderr);
    const prediction = (s: string) => s.match(/Prediction: (\d) with probability ([\d.]+)%/)!.slice(1);
    assert.deepEqual(prediction(fromPng.stdout), prediction(fromIndex.stdout));
  });

  it('says clearly when the file is not an image', () => {
    const bad = path.join(root, 'notes.png');
    fs.writeFileSync(bad, 'hello, not a picture');
    const r = runCli('predict', ['--checkpoint', path.join(runA, 'best.ckpt'), '--image', bad]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /notes\.png: not a PNG image/);
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  });

  it('lists runs as a table and compares two, writing an HTML chart', () => {
    const list = runCli('runs', ['--root', root]);
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /run +model +data +epochs +workers +best acc %/);
    assert.match(list.stdout, /\na +net +embedded +2\/2 +1 +\d+\.\d\d/);
    const html = path.join(root, 'cmp.html');
    const cmp = runCli('runs', ['--root', root, '--compare', runA, runB, '--html', html]);
    assert.equal(cmp.status, 0, cmp.stderr);
    assert.match(cmp.stdout, /epoch +loss A +loss B +acc A % +acc B %/);
    assert.match(fs.readFileSync(html, 'utf8'), /Plotly\.newPlot\('chart'/);
  });
});
