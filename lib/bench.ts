/**
 * Benchmarks on synthetic data (no data set needed): training and inference samples/s
 * after a warm-up, and a per-kernel time breakdown of one training step.
 */
import * as tf from '@tensorflow/tfjs';
import { createModel, seedDropout } from './models';
import { createOptimizer } from './optim';
import { rng } from './random';
import { nllLoss } from './train';

export interface KernelTime { kernel: string; ms: number; calls: number }

export interface StepBench {
  train_samples_per_s: number;
  infer_samples_per_s: number;
  train_step_ms: number;
  infer_step_ms: number;
  kernels: KernelTime[];
}

function syntheticBatch(batchSize: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const random = rng(seed, 'bench-data');
  const x = new Float32Array(batchSize * 28 * 28).map(() => random() * 2 - 0.5);
  const y = Int32Array.from({ length: batchSize }, () => Math.floor(random() * 10));
  return { x: tf.tensor4d(x, [batchSize, 28, 28, 1]), y: tf.tensor1d(y, 'int32') };
}

/** Median of per-step times over `steps` steps after `warmup` steps. */
async function timeSteps(step: () => Promise<void>, warmup: number, steps: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await step();
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

export async function benchModel(modelName: string, batchSize: number, warmup = 3, steps = 10): Promise<StepBench> {
  const model = createModel(modelName, 1);
  seedDropout(model, rng(1, 'bench-dropout'));
  const optimizer = createOptimizer('adadelta', 1.0, 0);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { x, y } = syntheticBatch(batchSize, 1);

  const trainStep = async () => {
    const { value, grads } = tf.variableGrads(() => nllLoss(model.apply(x, { training: true }) as tf.Tensor, y), vars);
    optimizer.applyGradients(grads);
    await value.data(); // wait for the step to finish on asynchronous backends
    tf.dispose([value, ...Object.values(grads)]);
  };
  const inferStep = async () => {
    const out = model.apply(x, { training: false }) as tf.Tensor;
    await out.data();
    out.dispose();
  };

  const trainMs = await timeSteps(trainStep, warmup, steps);
  const inferMs = await timeSteps(inferStep, warmup, steps);

  const profile = await tf.profile(trainStep);
  const byKernel = new Map<string, KernelTime>();
  for (const k of profile.kernels) {
    if (k.name.endsWith('__op')) continue; // op wrappers (fusedConv2d__op) would count their kernel twice
    const entry = byKernel.get(k.name) ?? { kernel: k.name, ms: 0, calls: 0 };
    entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    entry.calls++;
    byKernel.set(k.name, entry);
  }
  tf.dispose([x, y]);
  optimizer.dispose();
  model.dispose();
  return {
    train_samples_per_s: (1000 * batchSize) / trainMs,
    infer_samples_per_s: (1000 * batchSize) / inferMs,
    train_step_ms: trainMs,
    infer_step_ms: inferMs,
    kernels: [...byKernel.values()].sort((a, b) => b.ms - a.ms),
  };
}

export function formatKernels(kernels: KernelTime[], top = 15): string {
  const total = kernels.reduce((n, k) => n + k.ms, 0);
  const lines = [`${'Kernel'.padEnd(28)}${'Calls'.padStart(7)}${'ms'.padStart(10)}${'%'.padStart(8)}`];
  for (const k of kernels.slice(0, top)) {
    lines.push(`${k.kernel.padEnd(28)}${String(k.calls).padStart(7)}${k.ms.toFixed(1).padStart(10)}${((100 * k.ms) / total).toFixed(1).padStart(8)}`);
  }
  lines.push(`${'total (profiled step)'.padEnd(35)}${total.toFixed(1).padStart(10)}`);
  return lines.join('\n');
}
