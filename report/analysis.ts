/**
 * The profiling report's analysis, computed from a sweep's results. Every sentence is
 * chosen and filled from the numbers (none is fixed text about the outcome), so two
 * result sets that point different ways get different conclusions.
 */
import fs from 'node:fs';
import path from 'node:path';
import { readJsonLines } from '../lib/jsonl';

export interface EpochRow {
  workers: number; epoch: number; train_seconds: number; test_accuracy: number; train_loss: number; test_loss: number; samples_per_second: number;
  /** Threads computing each step (absent in runs from before data-parallel training: 1). */
  compute_threads?: number;
}
export interface LineRowIn { line: number; contents: string; workers: number; epoch: number; hits: number; time_s: number }
export interface Machine { cpu_model: string; cpus: number; memory_gb: number; node: string; tfjs: string; slurm_job_id: string; slurm_cpus_per_task: string; hostname: string }
export interface WaitRow { workers: number; epoch: number; line: number; seconds: number[] }

export interface SweepData {
  dir: string;
  workers: number[];
  epochs: EpochRow[];
  lines: LineRowIn[];
  waits: WaitRow[];
  machine: Machine;
  /** From the runs' config.json. */
  config: { backend: string; engine: string; backendLine?: string; data: string; note: string; train: number; test: number; epochs: number; batchSize: number; model: string };
  texts: Record<number, string>;
}

export interface PerWorkers {
  workers: number;
  epochSeconds: number; // mean training time per epoch
  steps: number; // steps per epoch
  headerSeconds: number; // loop header (waiting for batches), per epoch
  headerPerStepMs: number;
  stepSeconds: number; // forward + loss + backward + optimizer step lines, per epoch
  totalLineSeconds: number; // all profiled lines, per epoch
  finalAccuracy: number;
  computeThreads: number;
}

export interface Analysis {
  low: PerWorkers;
  high: PerWorkers;
  speedup: number;
  efficiency: number;
  headerLine: number;
  topLine: { line: number; contents: string; share: number };
  sentences: string[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (s: number) => `${(1000 * s).toFixed(1)} ms`;

/** Lines that make up the training step in lib/train.ts's trainEpoch. */
const STEP_LINE = /variableGrads|model\.apply|nllLoss\(|allReduce|applyGradients/;
const HEADER_LINE = /^for (await )?\(/;

function perWorkers(data: SweepData, workers: number, headerLine: number): PerWorkers {
  const epochs = data.epochs.filter((e) => e.workers === workers);
  const lines = data.lines.filter((l) => l.workers === workers);
  const n = Math.max(1, epochs.length);
  const header = lines.filter((l) => l.line === headerLine);
  const headerHits = header.reduce((a, l) => a + l.hits, 0) / n;
  const headerSeconds = header.reduce((a, l) => a + l.time_s, 0) / n;
  const steps = Math.max(1, headerHits - 1);
  return {
    workers,
    epochSeconds: mean(epochs.map((e) => e.train_seconds)),
    steps,
    headerSeconds,
    headerPerStepMs: (1000 * headerSeconds) / steps,
    stepSeconds: lines.filter((l) => STEP_LINE.test(l.contents)).reduce((a, l) => a + l.time_s, 0) / n,
    totalLineSeconds: lines.reduce((a, l) => a + l.time_s, 0) / n,
    finalAccuracy: epochs.length ? epochs[epochs.length - 1].test_accuracy : NaN,
    computeThreads: Math.max(1, ...epochs.map((e) => e.compute_threads ?? 1)),
  };
}

export function analyse(data: SweepData): Analysis {
  const sorted = [...data.workers].sort((a, b) => a - b);
  const lowW = sorted[0];
  const highW = sorted[sorted.length - 1];
  const headerLine = data.lines.find((l) => HEADER_LINE.test(l.contents.trim()))?.line ?? -1;
  const low = perWorkers(data, lowW, headerLine);
  const high = perWorkers(data, highW, headerLine);
  const speedup = low.epochSeconds / high.epochSeconds;
  const efficiency = highW > lowW && lowW > 0 ? speedup / (highW / lowW) : NaN;

  // Where the time goes (at the lower worker count).
  const byLine = new Map<number, { contents: string; seconds: number }>();
  for (const l of data.lines.filter((r) => r.workers === lowW)) {
    const e = byLine.get(l.line) ?? { contents: l.contents, seconds: 0 };
    e.seconds += l.time_s;
    byLine.set(l.line, e);
  }
  const totalLow = [...byLine.values()].reduce((a, e) => a + e.seconds, 0);
  const [topLineNo, top] = [...byLine.entries()].sort((a, b) => b[1].seconds - a[1].seconds)[0] ?? [-1, { contents: '', seconds: 0 }];
  const topLine = { line: topLineNo, contents: top.contents, share: totalLow > 0 ? top.seconds / totalLow : 0 };

  const s: string[] = [];
  const lowShare = low.headerSeconds / low.totalLineSeconds;
  const highShare = high.headerSeconds / high.totalLineSeconds;
  const stepShare = low.stepSeconds / low.totalLineSeconds;
  s.push(`Where the time goes: with ${lowW} worker${lowW === 1 ? '' : 's'}, the busiest line is ${topLine.line} ` +
    `(\`${topLine.contents}\`), ${pct(topLine.share)} of the profiled time; the training step (forward, loss, backward, ` +
    `optimizer step) takes ${pct(stepShare)} and waiting for the next batch (line ${headerLine}) ${pct(lowShare)}.`);

  const delta = high.headerPerStepMs - low.headerPerStepMs;
  const relative = low.headerPerStepMs > 0 ? delta / low.headerPerStepMs : 0;
  const direction = Math.abs(relative) < 0.1 ? 'barely changed' : delta < 0 ? 'fell' : 'rose';
  s.push(`Waiting for data: the loop header's time per step ${direction}, from ${low.headerPerStepMs.toFixed(2)} ms with ` +
    `${lowW} worker${lowW === 1 ? '' : 's'} to ${high.headerPerStepMs.toFixed(2)} ms with ${highW} ` +
    `(${delta >= 0 ? '+' : ''}${delta.toFixed(2)} ms, ${relative >= 0 ? '+' : ''}${pct(relative)}), that is ` +
    `${pct(lowShare)} and ${pct(highShare)} of the epoch.`);
  if (delta < 0 && Math.abs(relative) >= 0.1) {
    s.push(`More workers prepare batches ahead of the training step (up to ${highW} × 2 in flight), so the loop finds ` +
      `more of them ready when it asks.`);
  } else if (delta > 0 && Math.abs(relative) >= 0.1) {
    s.push(`More workers did not bring batches sooner here: the extra threads compete with the training step for ` +
      `the same ${data.machine.cpus} CPU core${data.machine.cpus === 1 ? '' : 's'}, and handing over each batch costs more than building it.`);
  } else {
    s.push(`Batches were already ready when the loop asked for them with ${lowW} worker${lowW === 1 ? '' : 's'}, so adding workers had little to remove.`);
  }

  const verdict = speedup > 1.05 ? `faster: a speedup of ${speedup.toFixed(2)}×` : speedup < 0.95
    ? `slower: a speedup of ${speedup.toFixed(2)}× (a slowdown)` : `no faster: a speedup of ${speedup.toFixed(2)}×, within noise`;
  s.push(`Epoch time: ${low.epochSeconds.toFixed(1)} s with ${lowW} worker${lowW === 1 ? '' : 's'} and ` +
    `${high.epochSeconds.toFixed(1)} s with ${highW}, so ${highW} workers are ${verdict}` +
    (Number.isFinite(efficiency) ? `, a parallel efficiency of ${pct(efficiency)} for ${highW / lowW}× the workers.` : '.'));

  const threads = (n: number) => `${n} compute thread${n === 1 ? '' : 's'}`;
  s.push(low.computeThreads === high.computeThreads
    ? `Both runs computed each step on ${threads(low.computeThreads)}${low.computeThreads > 1 ? ' (data parallel: each took a part of every batch)' : ''}, ` +
      'so the comparison isolates the data loader.'
    : `The runs computed each step on ${threads(low.computeThreads)} (${lowW} worker${lowW === 1 ? '' : 's'}) and ${threads(high.computeThreads)} ` +
      `(${highW} workers), one per CPU they were given: part of the difference in epoch time is computation, not data loading.`);

  const cpus = Number(data.machine.slurm_cpus_per_task) || data.machine.cpus;
  const limit = highW > cpus
    ? `${highW} workers are more than the ${cpus} CPU core${cpus === 1 ? '' : 's'} available${data.machine.slurm_cpus_per_task ? ' to this Slurm job' : ''}, ` +
      `and the training step itself needs ${pct(stepShare)} of the time on the CPU backend (${data.config.backend}), so workers and step share the cores.`
    : `${highW} workers fit in the ${cpus} CPU cores available, so they need not take cores from the training step.`;
  s.push(`What limits it on this machine: ${limit} Data loading can save at most the waiting time, ${pct(lowShare)} of an epoch ` +
    `with ${lowW} worker${lowW === 1 ? '' : 's'}; the remaining ${pct(1 - lowShare)} is computation that workers do not touch.`);

  // If the step ran 10 times faster (a GPU, or many more cores for the backend), the same waits would weigh more.
  const stepPerStep = low.stepSeconds / low.steps;
  const fastShare = (low.headerPerStepMs / 1000) / (low.headerPerStepMs / 1000 + stepPerStep / 10);
  s.push(`On a node with more cores or a GPU: if the training step ran 10 times faster (${ms(stepPerStep)} → ${ms(stepPerStep / 10)} ` +
    `per step) while batches arrived as they did with ${lowW} worker${lowW === 1 ? '' : 's'}, waiting would be ${pct(fastShare)} of each step ` +
    `instead of ${pct(lowShare)}${fastShare > 0.2 ? ', and more workers (with --cpus-per-task to match) would start to pay off' : ', still small: the step would remain the bottleneck'}.`);

  const accDiff = Math.abs(low.finalAccuracy - high.finalAccuracy);
  s.push(accDiff < 1e-9
    ? `Both runs reached the same final accuracy (${low.finalAccuracy.toFixed(2)}%): the worker count changes speed, not results.`
    : `The final accuracies differ (${low.finalAccuracy.toFixed(2)}% vs ${high.finalAccuracy.toFixed(2)}%)` +
      (low.computeThreads === high.computeThreads ? ': check that both runs used the same seed and data.'
        : ': expected with different compute threads, as dropout draws and summation order differ.'));
  return { low, high, speedup, efficiency, headerLine, topLine, sentences: s };
}

/** Reads a sweep folder written by `npm run profile` (lib/sweep.ts). */
export function readSweep(dir: string): SweepData {
  const runs = path.join(dir, 'runs');
  if (!fs.existsSync(runs)) throw new Error(`${dir}: no runs/ folder: not a sweep written by npm run profile`);
  const workers = fs.readdirSync(runs).filter((d) => /^w\d+$/.test(d)).map((d) => Number(d.slice(1))).sort((a, b) => a - b);
  if (workers.length < 2) throw new Error(`${dir}: a sweep needs runs for at least two worker counts, found ${workers.length}`);
  const epochs: EpochRow[] = [];
  const lines: LineRowIn[] = [];
  const waits: WaitRow[] = [];
  const texts: Record<number, string> = {};
  let config: SweepData['config'] | undefined;
  for (const w of workers) {
    const run = path.join(runs, `w${w}`);
    for (const file of ['metrics.jsonl', 'line-profile.json', 'line-profile.txt', 'config.json']) {
      if (!fs.existsSync(path.join(run, file))) throw new Error(`${run}: missing ${file} (was the run interrupted? rerun with --fresh)`);
    }
    epochs.push(...readJsonLines<EpochRow>(path.join(run, 'metrics.jsonl')).map((e) => ({ ...e, workers: w })));
    lines.push(...(JSON.parse(fs.readFileSync(path.join(run, 'line-profile.json'), 'utf8')) as LineRowIn[]));
    const waitFile = path.join(run, 'loop-waits.json');
    if (fs.existsSync(waitFile)) waits.push(...(JSON.parse(fs.readFileSync(waitFile, 'utf8')) as WaitRow[]));
    texts[w] = fs.readFileSync(path.join(run, 'line-profile.txt'), 'utf8');
    const c = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
    config ??= {
      backend: c.backend, engine: c.engine, backendLine: c.backend_line, data: c.data.name, note: c.data.note, train: c.data.train, test: c.data.test,
      epochs: c.options.epochs, batchSize: c.options.batchSize, model: c.options.model,
    };
  }
  const machineFile = path.join(dir, 'machine.json');
  const machine = fs.existsSync(machineFile) ? JSON.parse(fs.readFileSync(machineFile, 'utf8')) as Machine
    : { cpu_model: 'unknown', cpus: 0, memory_gb: 0, node: '', tfjs: '', slurm_job_id: '', slurm_cpus_per_task: '', hostname: '' };
  return { dir, workers, epochs, lines, waits, machine, config: config!, texts };
}
