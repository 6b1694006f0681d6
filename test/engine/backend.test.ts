import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import fs from 'node:fs';
import util from 'node:util';
import { initBackend, nodeBindingBlocker, probeNodeBinding } from '../../lib/engine/backend';
import { isInstalled } from '../../lib/util/packages';
import { UserError } from '../../lib/util/errors';
import { createModel } from '../../lib/models';
import { formatSummary, summarize } from '../../lib/models/summary';

describe('backend choice', () => {
  const nodeBinding = probeNodeBinding('@tensorflow/tfjs-node-gpu');

  it('auto says which backend it uses and why the better ones were not used', async (t) => {
    if (nodeBinding.loaded) return t.skip('tfjs-node-gpu loads on this machine: auto picks it');
    const info = await initBackend('auto');
    assert.equal(info.name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.match(info.line, /^Backend: wasm — .*\(auto: @tensorflow\/tfjs-node-gpu (not installed|failed to load: .+); @tensorflow\/tfjs-node (not installed|failed to load)/);
  });

  it('does not mistake danfo\'s alias of @tensorflow/tfjs for tfjs-node', (t) => {
    // danfojs-node's override installs @tensorflow/tfjs under the name @tensorflow/tfjs-node.
    let aliasName = '';
    try {
      aliasName = JSON.parse(fs.readFileSync(require.resolve('@tensorflow/tfjs-node/package.json'), 'utf8')).name;
    } catch { /* nothing under that name */ }
    if (aliasName !== '@tensorflow/tfjs') return t.skip(`no alias installed here (@tensorflow/tfjs-node is ${aliasName || 'absent'})`);
    assert.equal(isInstalled('@tensorflow/tfjs-node'), false);
    const probe = probeNodeBinding('@tensorflow/tfjs-node');
    assert.equal(probe.loaded, false);
    assert.equal(probe.reason, '@tensorflow/tfjs-node not installed');
  });

  it('an explicit backend that cannot load is an error, not a fallback', async (t) => {
    if (nodeBinding.loaded) return t.skip('tfjs-node-gpu loads on this machine');
    await assert.rejects(initBackend('tensorflow'), (e: unknown) => e instanceof UserError && /--backend tensorflow cannot load/.test(e.message));
    await assert.rejects(initBackend('gpu' as never), /unknown backend 'gpu': expected one of auto, tensorflow, webgpu, wasm, cpu/);
  });

  it('an explicit cpu request gives cpu', async () => {
    const info = await initBackend('cpu');
    assert.equal(tf.getBackend(), 'cpu');
    assert.match(info.line, /requested with --backend/);
    await initBackend('wasm');
  });
});

describe('tfjs-node-gpu on Node 23 and later', () => {
  it('says precisely why 4.22.0 cannot load where util.isNullOrUndefined is gone, and what to do', () => {
    const why = nodeBindingBlocker('@tensorflow/tfjs-node-gpu', '4.22.0', 'v24.21.0', false);
    assert.match(why!, /^@tensorflow\/tfjs-node-gpu 4\.22\.0 cannot load on Node v24\.21\.0: it calls util\.isNullOrUndefined, which Node 23 removed \(tfjs issue 8609/);
    assert.match(why!, /Run it on Node 22/);
    assert.equal(nodeBindingBlocker('@tensorflow/tfjs-node-gpu', '4.22.0', 'v22.23.3', true), undefined, 'Node 22 still has it');
    assert.equal(nodeBindingBlocker('@tensorflow/tfjs-node-gpu', '4.23.0', 'v24.21.0', false), undefined, 'a later release is not blocked');
  });

  it('matches this Node: the blocker applies exactly when util.isNullOrUndefined is missing', () => {
    const missing = typeof (util as unknown as Record<string, unknown>).isNullOrUndefined !== 'function';
    assert.equal(nodeBindingBlocker('@tensorflow/tfjs-node-gpu', '4.22.0') !== undefined, missing);
    assert.equal(missing, Number(process.versions.node.split('.')[0]) >= 23, `Node ${process.version}`);
  });
});

describe('Net', () => {
  it('has the reference architecture and 3,274,634 parameters', async () => {
    await initBackend('wasm');
    const model = createModel('net', 1);
    const s = summarize(model);
    assert.equal(s.totalParams, 3_274_634);
    assert.deepEqual(s.rows.map((r) => r.name), ['Conv2d-1', 'ReLU-2', 'MaxPool2d-3', 'Conv2d-4', 'ReLU-5', 'MaxPool2d-6',
      'Flatten-7', 'Linear-8', 'ReLU-9', 'Dropout-10', 'Linear-11', 'LogSoftmax-12']);
    assert.deepEqual(s.rows.map((r) => r.params), [832, 0, 0, 51_264, 0, 0, 0, 3_212_288, 0, 0, 10_250, 0]);
    assert.deepEqual(s.rows[5].outputShape, [-1, 64, 7, 7]);
    assert.deepEqual(s.rows[6].outputShape, [-1, 3136]);
    const text = formatSummary(s);
    assert.match(text, /Layer \(type\)\s+Output Shape\s+Param #/);
    assert.match(text, /\n\s+Conv2d-1\s+\[-1, 32, 28, 28\]\s+832\n/);
    assert.match(text, /Total params: 3,274,634\nTrainable params: 3,274,634\nNon-trainable params: 0/);
    assert.match(text, /Params size \(MB\): 12\.49/);
    model.dispose();
  });

  it('outputs log-probabilities, and the same seed gives the same weights', async () => {
    const a = createModel('net', 7);
    const b = createModel('net', 7);
    const c = createModel('net', 8);
    const out = a.predict(tf.zeros([3, 28, 28, 1])) as tf.Tensor;
    assert.deepEqual(out.shape, [3, 10]);
    const sums = tf.exp(out).sum(1).dataSync();
    sums.forEach((v) => assert.ok(Math.abs(v - 1) < 1e-5));
    const w = (m: tf.LayersModel) => m.getWeights()[0].dataSync();
    assert.deepEqual(w(a), w(b));
    assert.notDeepEqual(w(a), w(c));
    // PyTorch's default init: |w| <= 1/sqrt(fan_in) = 1/5 for conv1.
    assert.ok(Math.max(...w(a).map(Math.abs)) <= 0.2);
    tf.dispose(out);
    [a, b, c].forEach((m) => m.dispose());
  });
});
