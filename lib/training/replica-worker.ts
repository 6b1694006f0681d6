/**
 * A data-parallel replica: a worker thread with its own TensorFlow.js backend (its own
 * wasm instance, so its own CPU core) and its own copy of the model and optimizer. Each
 * step it runs the training step (training/step.ts) on its part of the batch, summing the
 * gradients through shared memory (engine/allreduce.ts), and so applies the same update as
 * the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { StepMemory } from '../engine/allreduce';
import { initBackend } from '../engine/backend';
import { createModel, seedDropout } from '../models';
import { createOptimizer } from './optim';
import { evaluateSums, predictLogProbs } from './evaluate';
import { rng } from '../util/random';
import { isProfiling, setProfiling, takeThreadRecord } from '../profiling/runtime';
import type { ReplicaInit, ReplicaReply, ReplicaRequest, WireTensor } from './data-parallel';
import { GradientReducer, StepTarget, trainStep, trainableVariables } from './step';

const init = workerData as ReplicaInit;
const port = parentPort!;
const memory = new StepMemory(init.shared, init.replica);

let model: tf.LayersModel;
let vars: tf.Variable[];
let optimizer: tf.Optimizer;
/** The step being computed (set before each), for the shared-memory slots. */
let step = 0;

/** Sums through shared memory, waiting blocked: a worker thread has nothing else to do meanwhile. */
const reducer: GradientReducer = {
  allReduce: (loss, grads) => memory.allReduce(step, vars, loss, grads, (barrier) => memory.waitBlocking(step, barrier)),
};
const target = (): StepTarget => ({ model, optimizer, vars, reducer });

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
      step = req.step;
      // Profiled with the main thread: the step's tagged lines go on this thread's timeline.
      if (req.profile !== isProfiling()) setProfiling(req.profile);
      if (req.size > 0) {
        (await trainStep(target(), req)).dispose();
      } else {
        // No rows for this replica (a batch smaller than the threads): zeros in, the same sums applied.
        const { loss, grads } = await reducer.allReduce(tf.scalar(0), {});
        optimizer.applyGradients(grads);
        tf.dispose([loss, ...Object.values(grads)]);
      }
      return;
    }
    case 'evaluate':
    case 'predict': {
      // The main thread's batch-norm running statistics (the trainable weights are already the same).
      model.nonTrainableWeights.forEach((w, i) => {
        const value = fromWire(req.state[i]);
        w.write(value);
        value.dispose();
      });
      const split = { images: req.images, labels: req.labels, count: req.count };
      if (req.type === 'evaluate') {
        reply({ type: 'evaluated', id: req.id, sums: await evaluateSums(model, split, req.batchSize) });
      } else {
        const logProbs = await predictLogProbs(model, split, req.batchSize);
        port.postMessage({ type: 'predicted', id: req.id, logProbs } satisfies ReplicaReply, [logProbs.buffer as ArrayBuffer]);
      }
      return;
    }
    case 'collect': {
      reply({ type: 'record', id: req.id, record: takeThreadRecord(`compute thread ${init.replica}`) });
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
  vars = trainableVariables(model);
  optimizer = createOptimizer(init.optimizer.name, init.optimizer.lr, init.optimizer.momentum);
  reply({ type: 'ready' });
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
