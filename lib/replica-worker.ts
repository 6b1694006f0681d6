/**
 * A data-parallel replica: a worker thread with its own TensorFlow.js backend (its own
 * wasm instance, so its own CPU core) and its own copy of the model and optimizer. Each
 * step it computes the gradients of its part of the batch, all-reduces them through
 * shared memory (lib/allreduce.ts) and applies the same update as the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { StepMemory } from './allreduce';
import { initBackend } from './backend';
import { nllLoss } from './loss';
import { createModel, seedDropout } from './models';
import { createOptimizer } from './optim';
import { rng } from './random';
import type { ReplicaInit, ReplicaReply, ReplicaRequest, WireTensor } from './data-parallel';

const init = workerData as ReplicaInit;
const port = parentPort!;
const memory = new StepMemory(init.shared, init.replica);

let model: tf.LayersModel;
let vars: tf.Variable[];
let optimizer: tf.Optimizer;

function reply(message: ReplicaReply): void {
  port.postMessage(message);
}

function fromWire(w: WireTensor): tf.Tensor {
  return tf.tensor(w.data, w.shape, w.dtype);
}

async function handle(req: ReplicaRequest): Promise<void> {
  switch (req.type) {
    case 'sync': {
      const weights = req.weights.map(fromWire);
      model.setWeights(weights);
      tf.dispose(weights);
      // A fresh optimizer, so that the old slot variables are freed, holding the main thread's state.
      optimizer.dispose();
      optimizer = createOptimizer(init.optimizer.name, req.lr, init.optimizer.momentum);
      const state = req.optimizer.map((w) => ({ name: w.name ?? '', tensor: fromWire(w) }));
      if (state.length) await optimizer.setWeights(state);
      seedDropout(model, rng(req.seed, 'dropout', req.epoch, 'replica', init.replica));
      reply({ type: 'done', id: req.id });
      return;
    }
    case 'step': {
      const { step, size, weight } = req;
      let loss = 0;
      if (size > 0) {
        const data = tf.tensor4d(req.images, [size, 28, 28, 1]);
        const target = tf.tensor1d(req.labels, 'int32');
        const { value, grads } = tf.variableGrads(() => nllLoss(model.apply(data, { training: true }) as tf.Tensor, target, weight), vars);
        loss = value.dataSync()[0];
        memory.publish(step, vars.map((v) => grads[v.name] ?? null), loss);
        tf.dispose([data, target, value, ...Object.values(grads)]);
      } else {
        memory.publish(step, [], 0);
      }
      memory.waitBlocking(step);
      const summed = memory.sum(step, vars.map((v) => v.shape));
      optimizer.applyGradients(Object.fromEntries(vars.map((v, i) => [v.name, summed[i]])));
      tf.dispose(summed);
      return;
    }
    case 'weights': {
      const weights: WireTensor[] = model.getWeights().map((t) => ({ shape: t.shape, dtype: t.dtype, data: t.dataSync() as Float32Array }));
      reply({ type: 'weights', id: req.id, weights });
      return;
    }
  }
}

async function start(): Promise<void> {
  await initBackend(init.backend);
  model = createModel(init.model, init.seed);
  vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  optimizer = createOptimizer(init.optimizer.name, init.optimizer.lr, init.optimizer.momentum);
  reply({ type: 'ready', numTensors: tf.memory().numTensors });
}

let failed = false;
function fail(err: unknown): void {
  if (failed) return;
  failed = true;
  memory.abort(); // wakes the other replicas, which would otherwise wait for this one forever
  const e = err instanceof Error ? err : new Error(String(err));
  reply({ type: 'error', message: e.message, stack: e.stack });
}

// Requests are handled one at a time, in order (a sync's async part finishes before the next
// step); after a failure none are.
let queue = start().catch(fail);
port.on('message', (req: ReplicaRequest) => {
  queue = queue.then(() => (failed ? undefined : handle(req))).catch(fail);
});
