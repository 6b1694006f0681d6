/**
 * The profiling report's analysis, computed from a sweep's results. Every sentence is
 * chosen and filled from the numbers (none is fixed text about the outcome), so two
 * result sets that point different ways get different conclusions.
 */
import type { SweepData, SweepLine } from '../lib/runs/sweep';
import { UserError } from '../lib/util/errors';

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
  /** The loop that waits for batches: its function and the line of its header. */
  loop: { function: string; line: number };
  headerLine: number;
  topLine: { function: string; line: number; contents: string; share: number };
  /** Each step phase's share of the step's time, at the lower worker count, in step order. */
  phases: { phase: string; share: number }[];
  sentences: string[];
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const sum = (lines: SweepLine[]) => lines.reduce((a, l) => a + l.time_s, 0);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (s: number) => `${(1000 * s).toFixed(1)} ms`;

/**
 * The profile's tags (`// @phase NAME` on the source lines, training/epoch.ts and step.ts):
 * the wait for the next batch, the step as a whole, and the step's phases in order.
 */
const DATA_TAG = 'data';
const STEP_TAG = 'step';
const STEP_PHASES = ['forward', 'loss', 'backward', 'allreduce', 'optimizer'];

/** The loop the study is about: where the profile waits for the next batch. */
function dataLoop(data: SweepData): { function: string; line: number } {
  const header = data.lines.find((l) => l.tag === DATA_TAG);
  if (!header) throw new UserError(`${data.dir}: no line of the line profile is tagged as waiting for data ('@phase ${DATA_TAG}')`);
  return { function: header.function, line: header.line };
}

function perWorkers(data: SweepData, workers: number, loop: { function: string; line: number }): PerWorkers {
  const epochs = data.epochs.filter((e) => e.workers === workers);
  // The loop's own lines: the step's lines are inside its step line (line_profiler's times are inclusive).
  const lines = data.lines.filter((l) => l.workers === workers && l.function === loop.function);
  const n = Math.max(1, epochs.length);
  const header = lines.filter((l) => l.line === loop.line);
  const headerHits = header.reduce((a, l) => a + l.hits, 0) / n;
  const headerSeconds = sum(header) / n;
  const steps = Math.max(1, headerHits - 1);
  return {
    workers,
    epochSeconds: mean(epochs.map((e) => e.train_seconds)),
    steps,
    headerSeconds,
    headerPerStepMs: (1000 * headerSeconds) / steps,
    // Recorded before lines were tagged: the step is all of the loop's time but the wait.
    stepSeconds: (data.untagged ? sum(lines) - sum(header) : sum(lines.filter((l) => l.tag === STEP_TAG))) / n,
    totalLineSeconds: sum(lines) / n,
    finalAccuracy: epochs.length ? epochs[epochs.length - 1].test_accuracy : NaN,
    computeThreads: Math.max(1, ...epochs.map((e) => e.compute_threads ?? 1)),
  };
}

export function analyse(data: SweepData): Analysis {
  const sorted = [...data.workers].sort((a, b) => a - b);
  const lowW = sorted[0];
  const highW = sorted[sorted.length - 1];
  const loop = dataLoop(data);
  const headerLine = loop.line;
  const low = perWorkers(data, lowW, loop);
  const high = perWorkers(data, highW, loop);
  const speedup = low.epochSeconds / high.epochSeconds;
  const efficiency = highW > lowW && lowW > 0 ? speedup / (highW / lowW) : NaN;

  // Where the time goes (at the lower worker count): the busiest line that is not the step as a whole.
  const byLine = new Map<string, { function: string; line: number; contents: string; seconds: number }>();
  for (const l of data.lines.filter((r) => r.workers === lowW && r.tag !== STEP_TAG)) {
    const key = `${l.function}:${l.line}`;
    const e = byLine.get(key) ?? { function: l.function, line: l.line, contents: l.contents, seconds: 0 };
    e.seconds += l.time_s;
    byLine.set(key, e);
  }
  const totalLow = low.totalLineSeconds * Math.max(1, data.epochs.filter((e) => e.workers === lowW).length);
  const top = [...byLine.values()].sort((a, b) => b.seconds - a.seconds)[0] ?? { function: '', line: -1, contents: '', seconds: 0 };
  const topLine = { function: top.function, line: top.line, contents: top.contents, share: totalLow > 0 ? top.seconds / totalLow : 0 };
  const lowLines = data.lines.filter((l) => l.workers === lowW);
  const phaseTotal = sum(lowLines.filter((l) => STEP_PHASES.includes(l.tag)));
  const phases = STEP_PHASES.map((phase) => ({ phase, share: phaseTotal > 0 ? sum(lowLines.filter((l) => l.tag === phase)) / phaseTotal : 0 }))
    .filter((p) => lowLines.some((l) => l.tag === p.phase));

  const s: string[] = [];
  if (data.differences.length) {
    s.push(`Not like for like: the runs were measured under different conditions (${data.differences.join('; ')}). ` +
      'Part of any difference below may come from those conditions rather than from the number of workers; measure both on the same machine and allocation to compare the workers alone.');
  }
  if (data.untagged) {
    s.push(`This sweep was recorded before profile lines were tagged: the wait for data is known from its loop waits, ` +
      `the training step is taken as all of \`${loop.function}\`'s other time, and the step's phases are not broken down.`);
  }
  // The CPUs the run with more workers had, from its own record.
  const highRun = data.provenance.find((p) => p.workers === highW);
  const slurmCpus = Number(highRun?.slurm_cpus_per_task) || 0;
  const cpus = slurmCpus || highRun?.cpus || 0;
  const cores = cpus ? `${cpus} CPU core${cpus === 1 ? '' : 's'}` : 'CPU cores (their number was not recorded)';
  const lowShare = low.headerSeconds / low.totalLineSeconds;
  const highShare = high.headerSeconds / high.totalLineSeconds;
  const stepShare = low.stepSeconds / low.totalLineSeconds;
  s.push(`Where the time goes: with ${lowW} worker${lowW === 1 ? '' : 's'}, the training step takes ${pct(stepShare)} of ` +
    `\`${loop.function}\` and waiting for the next batch (line ${headerLine}) ${pct(lowShare)}; the busiest single line is ` +
    `${topLine.line} of \`${topLine.function}\` (\`${topLine.contents}\`), ${pct(topLine.share)} of the epoch.`);
  if (phases.length) {
    s.push(`Inside the step (${lowW} worker${lowW === 1 ? '' : 's'}): ${phases.map((p) => `${p.phase} ${pct(p.share)}`).join(', ')} of its phases' time` +
      (phases.some((p) => p.phase === 'backward') ? ' (the backward line is charged after its forward and loss lines finish).' : '.'));
  }

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
      `the same ${cores}.`);
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

  const limit = cpus && highW > cpus
    ? `${highW} workers are more than the ${cores} available${slurmCpus ? ` to its Slurm job${highRun?.slurm_job_id ? ` ${highRun.slurm_job_id}` : ''}` : ''}, ` +
      `and the training step itself needs ${pct(stepShare)} of the time on the CPU backend (${data.config.backend}), so workers and step share the cores.`
    : cpus ? `${highW} workers fit in the ${cores} available, so they need not take cores from the training step.`
      : `the run's CPU count was not recorded, so whether ${highW} workers had cores of their own cannot be said.`;
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
  return { low, high, speedup, efficiency, loop, headerLine, topLine, phases, sentences: s };
}
