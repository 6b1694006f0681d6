/**
 * Benchmarks: training and inference samples/s on synthetic data after a warm-up, a
 * per-kernel time breakdown of one training step, the data loader alone by worker count,
 * and profiling's overhead (line profiler, every thread's timeline) on a training epoch.
 */
import * as tf from '@tensorflow/tfjs';
import { createModel, seedDropout } from './models';
import { ComputeSplit, DataParallel } from './training/data-parallel';
import { createOptimizer } from './training/optim';
import { rng } from './util/random';
import type { Split } from './data/dataset';
import { DataLoader } from './data/loader';
import { clock, ProfileSession, recordSpan, setProfiling } from './profiling';
import { memoryProgress } from './training/progress';
import { trainEpoch } from './training/epoch';
import { StepTarget, trainableVariables, trainStep } from './training/step';
import { dispatchCount } from './engine/webgpu/dispatch';
import { onThisThreadAlone } from './engine/wasm/simd-kernels';

export interface KernelTime { kernel: string; ms: number; calls: number }

export interface StepBench {
  train_samples_per_s: number;
  infer_samples_per_s: number;
  train_step_ms: number;
  infer_step_ms: number;
  kernels: KernelTime[];
  /** On webgpu: compute-shader dispatches of one training step, tfjs's and the lab's own. */
  dispatches_per_step?: number;
}

function syntheticBatch(batchSize: number, seed: number): { x: tf.Tensor4D; y: tf.Tensor1D } {
  const random = rng(seed, 'bench-data');
  const x = new Float32Array(batchSize * 28 * 28).map(() => random() * 2 - 0.5);
  const y = Int32Array.from({ length: batchSize }, () => Math.floor(random() * 10));
  return { x: tf.tensor4d(x, [batchSize, 28, 28, 1]), y: tf.tensor1d(y, 'int32') };
}

/**
 * Warm-up lasts at least this long (default 2 s) as well as `warmup` steps: V8 first runs
 * WebAssembly on its baseline compiler and swaps in optimised code as functions get hot, and
 * a fresh compute thread does so on its own. gap-8k on 2 threads: about 47 ms a step after 3
 * steps, 27 ms once warm (from about step 50, 1.5 s); a 3-step warm-up timed the start-up.
 */
let warmupMs = 2000;

/** The warm-up time (bench's --warmup-seconds); the PyTorch peer gets the same. */
export function setWarmupSeconds(seconds: number): void {
  warmupMs = 1000 * seconds;
}
export const warmupSeconds = (): number => warmupMs / 1000;

/** Runs `work` `times` times and then on until the warm-up time has passed. */
async function warmUp(work: () => Promise<unknown>, times: number): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < times || performance.now() - start < warmupMs; i++) await work();
}

/** Median of per-step times over `steps` steps after `warmup` steps and at least the warm-up time. */
async function timeSteps(step: () => Promise<void>, warmup: number, steps: number): Promise<number> {
  await warmUp(step, warmup);
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t0 = performance.now();
    await step();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** A model, optimizer and synthetic batch, stepped by the training step with `threads` compute threads. */
async function stepper(modelName: string, batchSize: number, threads: number, backend: string, split: ComputeSplit = 'batch') {
  const model = createModel(modelName, 1);
  seedDropout(model, rng(1, 'bench-dropout'));
  const optimizer = createOptimizer('adadelta', 1.0, 0);
  const parallel = await DataParallel.start(model, { threads, split, model: modelName, seed: 1, backend, optimizer: { name: 'adadelta', lr: 1.0, momentum: 0 } });
  await parallel.sync(model, optimizer, 1.0, 1, 1);
  const target: StepTarget = { model, optimizer, vars: trainableVariables(model), reducer: parallel };
  const { x, y } = syntheticBatch(batchSize, 1);
  const batch = { index: 0, size: batchSize, images: x.dataSync() as Float32Array, labels: y.dataSync() as Int32Array };
  return {
    model, x,
    step: async () => {
      const loss = await trainStep(target, parallel.scatter(batch));
      await loss.data(); // wait for the step to finish on asynchronous backends
      loss.dispose();
    },
    close: async () => {
      await parallel.close();
      tf.dispose([x, y]);
      optimizer.dispose();
      model.dispose();
    },
  };
}

export async function benchModel(modelName: string, batchSize: number, warmup = 3, steps = 10): Promise<StepBench> {
  const s = await stepper(modelName, batchSize, 1, tf.getBackend());
  try {
    const inferStep = async () => {
      const out = s.model.apply(s.x, { training: false }) as tf.Tensor;
      await out.data();
      out.dispose();
    };
    const trainMs = await timeSteps(s.step, warmup, steps);
    const inferMs = await timeSteps(inferStep, warmup, steps);
    const profile = await tf.profile(s.step);
    const before = dispatchCount();
    await s.step();
    const dispatches = dispatchCount() - before;
    const byKernel = new Map<string, KernelTime>();
    for (const k of profile.kernels) {
      if (k.name.endsWith('__op')) continue; // op wrappers (fusedConv2d__op) would count their kernel twice
      const entry = byKernel.get(k.name) ?? { kernel: k.name, ms: 0, calls: 0 };
      entry.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
      entry.calls++;
      byKernel.set(k.name, entry);
    }
    return {
      train_samples_per_s: (1000 * batchSize) / trainMs,
      infer_samples_per_s: (1000 * batchSize) / inferMs,
      train_step_ms: trainMs,
      infer_step_ms: inferMs,
      kernels: [...byKernel.values()].sort((a, b) => b.ms - a.ms),
      ...(tf.getBackend() === 'webgpu' ? { dispatches_per_step: dispatches } : {}),
    };
  } finally {
    await s.close();
  }
}

/** Training samples/s with `threads` compute threads sharing the work by `split`, stepping as training does. */
export async function benchParallelTraining(modelName: string, batchSize: number, threads: number, backend: string,
  warmup = 3, steps = 10, split: ComputeSplit = 'batch'): Promise<{ train_samples_per_s: number; train_step_ms: number }> {
  const s = await stepper(modelName, batchSize, threads, backend, split);
  try {
    const ms = await timeSteps(s.step, warmup, steps);
    return { train_samples_per_s: (1000 * batchSize) / ms, train_step_ms: ms };
  } finally {
    await s.close();
  }
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

/** Loader alone: batches/s over `epochs` full epochs after one warm-up epoch (persistent workers). */
export async function benchLoader(split: Split, numWorkers: number, batchSize = 64, epochs = 5): Promise<number> {
  const loader = new DataLoader(split, { batchSize, shuffle: true, seed: 1, numWorkers, persistentWorkers: true });
  const drain = async () => {
    let n = 0;
    for await (const b of loader) n += b.size > 0 ? 1 : 0;
    return n;
  };
  await drain();
  const t0 = performance.now();
  let batches = 0;
  for (let e = 0; e < epochs; e++) {
    loader.setEpoch(e + 1);
    batches += await drain();
  }
  const seconds = (performance.now() - t0) / 1000;
  await loader.close();
  return batches / seconds;
}

/** Resident memory (MB) with `numWorkers` persistent loader workers started and used once. */
export async function loaderResidentMB(split: Split, numWorkers: number): Promise<number> {
  const loader = new DataLoader(split, { batchSize: 64, numWorkers, persistentWorkers: true });
  for await (const b of loader) void b;
  await new Promise((r) => setTimeout(r, 200));
  const rss = process.memoryUsage().rss / 2 ** 20;
  await loader.close();
  return rss;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Runs `a` once to warm up (unless `warmUp` is false), then `a` and `b` alternately `rounds`
 * times each, so that a noisy host weighs on both alike; every run's figure.
 */
export async function alternateRuns(a: () => Promise<number>, b: () => Promise<number>, rounds: number, warmUp = true): Promise<[number[], number[]]> {
  if (warmUp) await a();
  const as: number[] = [];
  const bs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    as.push(await a());
    bs.push(await b());
  }
  return [as, bs];
}

/** alternateRuns' medians. */
async function alternate(a: () => Promise<number>, b: () => Promise<number>, rounds: number): Promise<[number, number]> {
  const [as, bs] = await alternateRuns(a, b, rounds);
  return [median(as), median(bs)];
}

/**
 * Profiling's cost on a training epoch with everything on: the line profiler, every thread's
 * timeline, `workers` loader workers profiling their batch building and `threads` compute
 * threads, the records gathered at the epoch's end and turned into a trace and its summary.
 * The same epoch (same data, weights and seed) is timed with profiling off and on,
 * alternately, `rounds` times each; medians.
 */
export async function benchProfileOverhead(split: Split, o: { workers: number; threads: number; split?: ComputeSplit; backend: string; rounds?: number }):
  Promise<{ off_s: number; on_s: number; overhead_pct: number; steps_overhead_pct: number; gather_s: number; workers: number; compute_threads: number;
    trace_events: number }> {
  const rounds = o.rounds ?? 3;
  const model = createModel('net', 1);
  const optimizer = createOptimizer('adadelta', 1.0, 0);
  const parallel = await DataParallel.start(model, { threads: o.threads, split: o.split, model: 'net', seed: 1, backend: o.backend, optimizer: { name: 'adadelta', lr: 1.0, momentum: 0 } });
  const loader = new DataLoader(split, { batchSize: 64, shuffle: true, seed: 1, numWorkers: o.workers, persistentWorkers: true });
  const progress = memoryProgress([]);
  let traceEvents = 0;
  // Where the overhead goes: during the steps (the probes), or after them (gathering every thread's records).
  const trainSeconds: Record<'off' | 'on', number[]> = { off: [], on: [] };
  const gatherSeconds: number[] = [];
  const epoch = async (on: boolean) => {
    await parallel.sync(model, optimizer, 1.0, 1, 1);
    seedDropout(model, rng(1, 'dropout', 1));
    const session = on ? new ProfileSession() : undefined;
    const t0 = performance.now();
    await trainEpoch({ model, optimizer, loader, logInterval: 10, progress, parallel }, 1);
    const t1 = performance.now();
    trainSeconds[on ? 'on' : 'off'].push((t1 - t0) / 1000);
    if (session) {
      recordSpan('epoch 1', performance.timeOrigin + t0, clock());
      await parallel.collect();
      session.end({ epoch: 1 });
      traceEvents = session.trace('bench').traceEvents.length;
      session.threadSummary();
      session.close();
      gatherSeconds.push((performance.now() - t1) / 1000);
    }
    return (performance.now() - t0) / 1000;
  };
  const [offS, onS] = await alternate(() => epoch(false), () => epoch(true), rounds);
  setProfiling(false);
  await loader.close();
  await parallel.close();
  optimizer.dispose();
  model.dispose();
  const stepsOff = median(trainSeconds.off);
  return { off_s: offS, on_s: onS, overhead_pct: (100 * (onS - offS)) / offS, steps_overhead_pct: (100 * (median(trainSeconds.on) - stepsOff)) / stepsOff,
    gather_s: median(gatherSeconds), workers: o.workers, compute_threads: o.threads, trace_events: traceEvents };
}

/**
 * The test pass (evaluation of `split`, batches of 1,000 as training's default) on one
 * thread and across `threads` compute threads; medians of `rounds`.
 */
export async function benchTestPass(modelName: string, split: Split, threads: number, backend: string, rounds = 3, computeSplit: ComputeSplit = 'batch'):
  Promise<{ one_thread_s: number; threads_s: number; threads: number; speedup: number }> {
  const model = createModel(modelName, 1);
  const optimizer = createOptimizer('adadelta', 1.0, 0);
  const single = DataParallel.single();
  const parallel = await DataParallel.start(model, { threads, split: computeSplit, model: modelName, seed: 1, backend, optimizer: { name: 'adadelta', lr: 1.0, momentum: 0 } });
  await parallel.sync(model, optimizer, 1.0, 1, 1);
  const time = async (dp: DataParallel) => {
    const t0 = performance.now();
    await dp.evaluate(model, split, 1000);
    return (performance.now() - t0) / 1000;
  };
  // Warm-up as for the training steps: the compute threads' inference kernels start cold.
  await warmUp(async () => {
    await time(parallel);
    await onThisThreadAlone(() => time(single));
  }, 1);
  const [one, many] = await alternate(() => onThisThreadAlone(() => time(single)), () => time(parallel), rounds);
  await parallel.close();
  optimizer.dispose();
  model.dispose();
  return { one_thread_s: one, threads_s: many, threads, speedup: one / many };
}
