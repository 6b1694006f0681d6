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
  stepSeconds: number; // the step line and the loss read-back (where a GPU step is waited for), per epoch
  readbackSeconds: number; // of which reading the loss back
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
  /** The loader side at each of the two worker counts, from the runs' timelines (undefined for runs recorded before them). */
  loaderLow?: LoaderSide;
  loaderHigh?: LoaderSide;
  sentences: string[];
}

/** What the loader workers did in one run, measured on their timelines (profiling/trace.ts). */
export interface LoaderSide {
  workers: number;
  /** Batches built per epoch, and the mean time to build one (in a worker; in the main thread with 0 workers). */
  batchesPerEpoch: number;
  buildMs: number;
  handoverMs: number;
  /** Mean share of the training time the loader workers were idle (NaN with 0 workers). */
  idleShare: number;
  /** Batches built and waiting when the loop asked for the next one (mean), and how often that one was ready. */
  queueReady: number;
  wantedReady: number;
  /** The training loop's wait for the next batch per step (its loop header), ms. */
  waitPerStepMs: number;
}

const stepWaitMs = (l: LoaderSide) => l.waitPerStepMs;

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
/** Reading the loss back: on a GPU, where the time of the kernels the step lines queued is waited for. */
const READBACK_TAG = 'readback';
/** The lines whose time is the step's: the step line and, on a GPU, the read-back that waits for it. */
const isStepTime = (tag: string) => tag === STEP_TAG || tag === READBACK_TAG;
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
    stepSeconds: (data.untagged ? sum(lines) - sum(header) : sum(lines.filter((l) => isStepTime(l.tag)))) / n,
    readbackSeconds: sum(lines.filter((l) => l.tag === READBACK_TAG)) / n,
    totalLineSeconds: sum(lines) / n,
    finalAccuracy: epochs.length ? epochs[epochs.length - 1].test_accuracy : NaN,
    computeThreads: Math.max(1, ...epochs.map((e) => e.compute_threads ?? 1)),
  };
}

/** The loader side of one run from its per-thread summary; undefined when the run recorded no timeline. */
function loaderSide(data: SweepData, workers: number, waitPerStepMs: number): LoaderSide | undefined {
  const threads = data.threads.filter((t) => t.workers === workers);
  const main = threads.find((t) => t.kind === 'main');
  if (!main) return undefined;
  const loaders = threads.filter((t) => t.kind === 'loader');
  const builders = loaders.length ? loaders : [main];
  const built = builders.reduce((n, t) => n + t.batches_built, 0);
  const weighted = (k: 'mean_build_ms' | 'mean_handover_ms') => (built ? builders.reduce((n, t) => n + t[k] * t.batches_built, 0) / built : 0);
  const epochs = Math.max(1, data.epochs.filter((e) => e.workers === workers).length);
  return {
    workers, batchesPerEpoch: built / epochs, buildMs: weighted('mean_build_ms'), handoverMs: weighted('mean_handover_ms'),
    idleShare: loaders.length ? mean(loaders.map((t) => t.waiting_share)) : NaN,
    queueReady: main.mean_queue_ready, wantedReady: main.wanted_ready_share, waitPerStepMs,
  };
}

/** The measured loader side in sentences: build time per batch, the workers' idle share, the queue when the loop asks. */
function loaderSentences(lo: LoaderSide, hi: LoaderSide, stepMs: number): string[] {
  const w = (n: number) => `${n} worker${n === 1 ? '' : 's'}`;
  const where = (l: LoaderSide) => (l.workers === 0 ? 'in the main thread' : 'in a worker');
  const out: string[] = [];
  out.push(`The loader side, measured on the threads' timelines: building a batch took ${l2(lo.buildMs)} ms ${where(lo)} with ${w(lo.workers)} ` +
    `and ${l2(hi.buildMs)} ms with ${w(hi.workers)}` + (hi.handoverMs > 0 ? ` (handing it over ${l2(hi.handoverMs)} ms more)` : '') +
    `, against ${l2(stepMs)} ms per training step.` +
    (lo.buildMs > 0 && hi.buildMs > 1.2 * lo.buildMs
      ? ` Building got ${(hi.buildMs / lo.buildMs).toFixed(1)}× slower with more workers: they share the cores with the step and with each other.`
      : ''));
  const idle = [lo, hi].filter((l) => Number.isFinite(l.idleShare));
  if (idle.length) {
    out.push(`The loader workers were idle ${idle.map((l) => `${pct(l.idleShare)} of the training time with ${w(l.workers)}`).join(' and ')}` +
      (idle.some((l) => l.idleShare > 0.5)
        ? ': most of the time their prefetch queue was full, waiting for the training step to take batches, so they build batches faster than the step uses them.'
        : ': they were busy most of the time, so batches were built about as fast as the step used them, or slower.'));
  }
  if (lo.workers > 0 || hi.workers > 0) {
    const asked = (l: LoaderSide) => `${l.queueReady.toFixed(1)} batch${l.queueReady.toFixed(1) === '1.0' ? ' was' : 'es were'} ready on average ` +
      `with ${w(l.workers)} (the one it wanted in ${pct(l.wantedReady)} of the asks)`;
    out.push(`When the loop asked for the next batch, ${[lo, hi].filter((l) => l.workers > 0).map(asked).join(', and ')}.`);
  }
  // Built in time, and still waited for: the wait is delivery (and sharing the cores), not building.
  const waited = hi.workers > 0 && hi.wantedReady >= 0.8 && stepWaitMs(hi) > 2 * hi.buildMs;
  if (waited) {
    out.push(`With ${w(hi.workers)} the batch the loop wanted had been built before it asked in ${pct(hi.wantedReady)} of the asks, yet the loop waited ` +
      `${l2(stepWaitMs(hi))} ms per step: that wait is the hand-over (the worker's message reaching a main thread busy with the step, ` +
      'worker threads sharing the cores), not the building.');
  }
  return out;
}

const l2 = (x: number) => x.toFixed(2);

/** One loader worker's line-profile figures over a run (all epochs). */
export interface LoaderRow { thread: string; batches: number; build_s: number; handover_s: number; total_s: number; per_batch_ms: number; idle_share: number }

/**
 * The worker side of one run, per loader worker, from the workers' own line profiles
 * (`build` and `handover` lines of the batch-building function) and their idle share from
 * the timeline; and the totals, which are the sums of the rows (idle: their mean).
 */
export function loaderTable(data: SweepData, workers: number): { rows: LoaderRow[]; total: LoaderRow } {
  const lines = data.workerLines.filter((l) => l.workers === workers);
  const threads = [...new Set(lines.map((l) => String(l.thread)))].sort((a, b) => Number(a.replace(/\D/g, '')) - Number(b.replace(/\D/g, '')));
  const idle = (thread: string) => data.threads.find((t) => t.workers === workers && t.thread === thread)?.waiting_share ?? NaN;
  const rows = threads.map((thread) => {
    const own = lines.filter((l) => l.thread === thread);
    // One call per batch: the function's first line runs once per call.
    const first = Math.min(...own.map((l) => l.line));
    const batches = own.filter((l) => l.line === first).reduce((n, l) => n + l.hits, 0);
    const total = sum(own);
    return { thread, batches, build_s: sum(own.filter((l) => l.tag === 'build')), handover_s: sum(own.filter((l) => l.tag === 'handover')),
      total_s: total, per_batch_ms: batches ? (1000 * total) / batches : 0, idle_share: idle(thread) };
  });
  const add = (k: 'batches' | 'build_s' | 'handover_s' | 'total_s') => rows.reduce((n, r) => n + r[k], 0);
  const batches = add('batches');
  const total = { thread: 'all workers', batches, build_s: add('build_s'), handover_s: add('handover_s'), total_s: add('total_s'),
    per_batch_ms: batches ? (1000 * add('total_s')) / batches : 0, idle_share: mean(rows.map((r) => r.idle_share)) };
  return { rows, total };
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
  for (const l of data.lines.filter((r) => r.workers === lowW && !isStepTime(r.tag))) {
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
  if (low.readbackSeconds / low.totalLineSeconds >= 0.01) {
    s.push(`Of the step's time, reading the loss back takes ${pct(low.readbackSeconds / low.totalLineSeconds)} of the epoch: that line waits ` +
      'for the kernels the step lines queued to finish (on a GPU a step line only queues its work), so the GPU\'s time shows there.');
  }
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
  const loaderLow = loaderSide(data, lowW, low.headerPerStepMs);
  const loaderHigh = loaderSide(data, highW, high.headerPerStepMs);
  const queued = loaderHigh && highW > 0 ? ` (${loaderHigh.queueReady.toFixed(1)} ready on average when it asked, measured)` : '';
  if (delta < 0 && Math.abs(relative) >= 0.1) {
    s.push(`More workers prepare batches ahead of the training step, so the loop finds more of them ready when it asks${queued}.`);
  } else if (delta > 0 && Math.abs(relative) >= 0.1) {
    s.push(`More workers did not bring batches sooner here: the extra threads compete with the training step for ` +
      `the same ${cores}.`);
  } else {
    s.push(`Batches were already ready when the loop asked for them with ${lowW} worker${lowW === 1 ? '' : 's'}, so adding workers had little to remove.`);
  }

  if (loaderLow && loaderHigh) s.push(...loaderSentences(loaderLow, loaderHigh, (1000 * low.stepSeconds) / low.steps));
  else s.push('The loader workers\' side (build time, idle share, queue) was not recorded in these runs: they predate timelines (rerun the sweep with --fresh).');

  const verdict = speedup > 1.05 ? `faster: a speedup of ${speedup.toFixed(2)}×` : speedup < 0.95
    ? `slower: a speedup of ${speedup.toFixed(2)}× (a slowdown)` : `no faster: a speedup of ${speedup.toFixed(2)}×, within noise`;
  s.push(`Epoch time: ${low.epochSeconds.toFixed(1)} s with ${lowW} worker${lowW === 1 ? '' : 's'} and ` +
    `${high.epochSeconds.toFixed(1)} s with ${highW}, so ${highW} workers are ${verdict}` +
    (Number.isFinite(efficiency) ? `, a parallel efficiency of ${pct(efficiency)} for ${highW / lowW}× the workers.` : '.'));

  const threads = (n: number) => `${n} compute thread${n === 1 ? '' : 's'}`;
  const splitWords = data.config.computeSplit === 'ops' ? 'split operations: each convolution and matrix product was split across them'
    : 'data parallel: each took a part of every batch';
  // How the cores were shared: compute threads beside the loader workers of the larger run.
  const shared = cpus ? ` With ${highW} loader worker${highW === 1 ? '' : 's'} that is ${high.computeThreads + highW} threads on ${cores}` +
    (high.computeThreads + highW <= cpus ? ', each with a core of its own.' : `: ${high.computeThreads + highW - cpus} more than the cores, so threads took turns.`) : '';
  s.push(low.computeThreads === high.computeThreads
    ? `Both runs computed each step on ${threads(low.computeThreads)}${low.computeThreads > 1 ? ` (${splitWords})` : ''}, ` +
      `so the comparison isolates the data loader.${shared}`
    : `The runs computed each step on ${threads(low.computeThreads)} (${lowW} worker${lowW === 1 ? '' : 's'}) and ${threads(high.computeThreads)} ` +
      `(${highW} workers), one per CPU they were given: part of the difference in epoch time is computation, not data loading.`);

  const onGpu = data.config.backend === 'webgpu';
  const limit = cpus && highW > cpus
    ? `${highW} workers are more than the ${cores} available${slurmCpus ? ` to its Slurm job${highRun?.slurm_job_id ? ` ${highRun.slurm_job_id}` : ''}` : ''}, ` +
      (onGpu ? `and the thread that drives the GPU needs ${pct(stepShare)} of the time for the step (recording its kernels and waiting for them), so workers and that thread share the cores.`
        : `and the training step itself needs ${pct(stepShare)} of the time on the CPU backend (${data.config.backend}), so workers and step share the cores.`)
    : cpus ? `${highW} workers fit in the ${cores} available, so they need not take cores from the training step.`
      : `the run's CPU count was not recorded, so whether ${highW} workers had cores of their own cannot be said.`;
  s.push(`What limits it on this machine: ${limit} Data loading can save at most the waiting time, ${pct(lowShare)} of an epoch ` +
    `with ${lowW} worker${lowW === 1 ? '' : 's'}; the remaining ${pct(1 - lowShare)} is computation that workers do not touch.`);

  // On a GPU the step line only queues kernels; the loss read-back (one step late) waits for them. So
  // per step: the wait for data is time the loop could not queue work, the read-back time the GPU
  // was still busy. The larger says which one set the pace.
  if (onGpu) {
    const gpuWaitMs = (w: PerWorkers) => (1000 * w.readbackSeconds) / w.steps;
    const verdict = (w: PerWorkers) => w.headerPerStepMs > gpuWaitMs(w)
      ? `the loop waited longer for data than for the GPU, so the GPU waited for data`
      : `the loop waited longer for the GPU than for data, so the GPU set the pace`;
    s.push(`Did the GPU wait for data? Per step, the loop waited ${low.headerPerStepMs.toFixed(2)} ms for the next batch and ` +
      `${gpuWaitMs(low).toFixed(2)} ms for the GPU (reading the loss back) with ${lowW} worker${lowW === 1 ? '' : 's'}: ${verdict(low)}; ` +
      `with ${highW}, ${high.headerPerStepMs.toFixed(2)} ms and ${gpuWaitMs(high).toFixed(2)} ms: ${verdict(high)}.`);
  }

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
  return { low, high, speedup, efficiency, loop, headerLine, topLine, phases, loaderLow, loaderHigh, sentences: s };
}
