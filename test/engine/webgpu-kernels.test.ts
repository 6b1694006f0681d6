/**
 * The own WGSL kernels of engine/webgpu/, each against the cpu backend on random inputs over
 * the zoo's shapes, on whatever Vulkan device this machine has (in CI, Mesa's lavapipe).
 * Skipped, visibly, where Dawn finds no Vulkan device.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../lib/engine/backend';
import { dispatchCount } from '../../lib/engine/webgpu/dispatch';
import { logSoftmaxOnWebgpu } from '../../lib/engine/webgpu/loss-kernels';
import { nllLoss } from '../../lib/training/loss';
import { createOptimizer } from '../../lib/training/optim';
import { assertClose } from '../helpers';

const probe = JSON.parse(spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'lib', 'engine', 'webgpu', 'adapter.js'), '--probe'],
  { encoding: 'utf8', timeout: 60_000 }).stdout.trim().split('\n').pop() || '{"ok":false,"reason":"the probe printed nothing"}') as
  { ok: boolean; reason?: string };
const skip = probe.ok ? false : `SKIPPED: no WebGPU adapter here (${probe.reason}); CI installs lavapipe: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`;
if (skip) process.stdout.write(`# ${skip}\n`);

/** Random values in [-1, 1) of a shape, the same for every backend. */
function random(shape: number[], seed: number): { shape: number[]; data: Float32Array } {
  return { shape, data: tf.tidy(() => tf.randomUniform(shape, -1, 1, 'float32', seed).dataSync() as Float32Array) };
}

/** `f` on the same inputs on webgpu and on cpu: [webgpu's outputs, cpu's]. */
async function onBoth(inputs: { shape: number[]; data: Float32Array }[], f: (...xs: tf.Tensor[]) => tf.Tensor[] | Promise<tf.Tensor[]>) {
  const results: Float32Array[][] = [];
  for (const backend of ['webgpu', 'cpu']) {
    await tf.setBackend(backend);
    const xs = inputs.map((v) => tf.tensor(v.data, v.shape));
    const outs = await f(...xs);
    results.push(await Promise.all(outs.map(async (t) => (await t.data()) as Float32Array)));
    tf.dispose([...xs, ...outs]);
  }
  await tf.setBackend('webgpu');
  return results;
}

describe('own WebGPU kernels against the cpu backend', { skip }, () => {
  before(async () => {
    await initBackend('webgpu');
  });

  // The Net's and the small models' weights, and sizes that leave a part-filled workgroup.
  for (const shape of [[5, 5, 1, 32], [32], [5, 5, 32, 64], [3136, 1024], [1024, 10], [10], [3, 3, 8, 12], [1000003]]) {
    it(`Adadelta update of a [${shape}] weight: two steps, one dispatch a step`, async () => {
      const inputs = [random(shape, 1), random(shape, 2), random(shape, 3)];
      let counted = 0;
      const [gpu, cpu] = await onBoth(inputs, (w0, g1, g2) => {
        const w = tf.variable(w0, true, `w${shape.join('x')}-${tf.getBackend()}`);
        const optimizer = createOptimizer('adadelta', 1.0, 0);
        optimizer.applyGradients({ [w.name]: g1 }); // the first step also makes the running averages
        const before = dispatchCount();
        optimizer.applyGradients({ [w.name]: g2 }); // the second has running averages to use
        if (tf.getBackend() === 'webgpu') counted = dispatchCount() - before;
        const state = (optimizer as unknown as { accumulatedGrads: { variable: tf.Variable }[]; accumulatedUpdates: { variable: tf.Variable }[] });
        const outs = [w.clone(), state.accumulatedGrads[0].variable.clone(), state.accumulatedUpdates[0].variable.clone()];
        optimizer.dispose();
        w.dispose();
        return outs;
      });
      assert.equal(counted, 1, 'dispatches of one update');
      ['weight', 'squared-gradient average', 'squared-update average'].forEach((what, i) => assertClose(gpu[i], cpu[i], what, 1e-5, 1e-7));
    });
  }

  // A classifier's batch of 10 classes: a part-filled workgroup, the usual batches, and more rows than one workgroup.
  for (const rows of [3, 64, 1000, 1024]) {
    for (const weight of [1, 0.5]) {
      it(`log-softmax and NLL loss of [${rows}, 10], weight ${weight}: values and gradients, one dispatch each way`, async () => {
        const labels = Int32Array.from(random([rows], 7).data, (v) => Math.min(9, Math.floor((v + 1) * 5)));
        let counted = 0;
        const [gpu, cpu] = await onBoth([random([rows, 10], 4), random([rows, 10], 5)], (x, dy) => {
          const target = tf.tensor1d(labels, 'int32');
          const logSoftmax = (t: tf.Tensor) => (tf.getBackend() === 'webgpu' ? logSoftmaxOnWebgpu(t) : tf.logSoftmax(t));
          const before = dispatchCount();
          const { value, grad } = tf.valueAndGrad((t: tf.Tensor) => nllLoss(logSoftmax(t), target, weight))(x);
          if (tf.getBackend() === 'webgpu') counted = dispatchCount() - before;
          // log-softmax's gradient on its own, for an upstream gradient that is not the NLL's one-hot.
          const throughSoftmax = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(logSoftmax(t), dy)))(x);
          const outs = [logSoftmax(x), value, grad, throughSoftmax];
          target.dispose();
          return outs;
        });
        assert.ok(counted >= 4 && counted <= 5, `dispatches of the loss forward and backward: ${counted} (4 own kernels, and the seed gradient's fill)`);
        ['log-softmax', 'loss', 'loss gradient', 'log-softmax gradient'].forEach((what, i) => assertClose(gpu[i], cpu[i], what, 1e-5, 1e-6));
      });
    }
  }
});
