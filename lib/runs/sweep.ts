/**
 * The 1-vs-8-worker study: trains once per worker count, each in a fresh process with
 * the line profiler on, then gathers the per-epoch metrics and per-line timings of all
 * runs into danfo tables (epochs.csv, lines.csv) beside each run's line_profiler text;
 * and reads a sweep folder back for the report and notebooks.
 *
 *   <sweep>/runs/w<N>/        the run folder of each worker count (run-folder.ts)
 *   <sweep>/train-w<N>.log    its output
 *   <sweep>/line-profile-w<N>.txt, loop-waits-w<N>.json, trace-w<N>.json, epochs.csv,
 *   lines.csv (every thread's lines), threads.csv (per-thread summary), lines-by-workers.csv
 *   (the training loop's lines), machine.json   gathered from the runs
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import type { DataFrame } from 'danfojs-node';
import type { LineRow, ThreadSummary, ThreadTimeline } from '../profiling';
import { fromTraceFile } from '../profiling/trace';
import { dataFrameToCsv } from '../util/csv';
import { UserError } from '../util/errors';
import { writeFileAtomic } from '../util/files';
import { FolderLock } from './lock';
import { projectRoot } from '../util/paths';
import { LoopWaits, RUN_FILES, RunConfig, RunFolder, studyDifferences } from './run-folder';
import { autoBackendName } from '../engine/backend';
import { fingerprintOf } from '../data/dataset';
import { parseTrainArgs } from '../training/cli';
import { chooseComputeThreads, studyComputeThreads } from '../training/thread-choice';
import { foreignEntries, someNames } from '../util/path-checks';

export interface SweepOptions {
  workers: number[];
  out: string;
  /** Training options passed through to every run (--epochs, --data, --limit, ...). */
  trainArgs: string[];
  log: (line: string) => void;
  /** Start every run over instead of resuming or skipping what is there. */
  fresh?: boolean;
  /** What resumes an interrupted sweep, for the message (default: the same command again). */
  resumeHint?: string;
}

export interface SweepTables {
  epochs: DataFrame;
  lines: DataFrame;
  /** Per source line: total seconds at each worker count (columns time_w1, time_w8, ...). */
  byLine: LineByWorkers[];
}

/** A line's time in one epoch at one worker count. */
export interface TimedLine { function: string; line: number; contents: string; time_s: number; workers: number }

/** One source line's total time (all epochs) at each worker count: `time_w<N>` columns. */
export type LineByWorkers = { function: string; line: number; contents: string } & Record<string, string | number>;

/**
 * Where, when and under which conditions one worker count's run was measured: taken from
 * the run's own record (config.json, metrics.jsonl), never from the process that gathers
 * or renders. Fields an older run did not record are null.
 */
export interface Provenance {
  workers: number;
  host: string | null;
  cpu_model: string | null;
  /** CPUs the process could use (cores, or Slurm's allocation). */
  cpus: number | null;
  memory_gb: number | null;
  node: string | null;
  tfjs: string | null;
  slurm_job_id: string;
  slurm_cpus_per_task: string;
  backend: string | null;
  engine: string | null;
  compute_threads: number | null;
  batch_size: number | null;
  started_at: string | null;
  finished_at: string | null;
}

/** The conditions that must be equal for two runs' timings to compare like for like. */
export const CONDITIONS = ['host', 'cpu_model', 'cpus', 'slurm_cpus_per_task', 'backend', 'engine', 'compute_threads', 'batch_size'] as const;

export function provenanceOf(run: RunFolder, workers: number): Provenance {
  const c = run.readConfig();
  const m = (c.machine ?? {}) as Partial<import('../util/machine').MachineInfo>;
  const metrics = run.readMetrics();
  return {
    workers, host: m.hostname ?? null, cpu_model: m.cpu_model ?? null, cpus: m.cpus ?? null, memory_gb: m.memory_gb ?? null,
    node: m.node ?? null, tfjs: m.tfjs ?? null, slurm_job_id: m.slurm_job_id ?? '', slurm_cpus_per_task: m.slurm_cpus_per_task ?? '',
    backend: c.backend ?? null, engine: c.engine ?? null, compute_threads: c.compute_threads ?? metrics[0]?.compute_threads ?? null,
    batch_size: c.options.batchSize ?? null, started_at: c.started_at ?? null, finished_at: metrics.at(-1)?.finished_at ?? null,
  };
}

/** How the runs' conditions differ ("host: a (1 worker) vs b (8 workers)"); [] when like for like. */
export function conditionDifferences(runs: Provenance[]): string[] {
  const out: string[] = [];
  for (const k of CONDITIONS) {
    const values = [...new Set(runs.map((p) => String(p[k] ?? 'not recorded')))];
    if (values.length > 1) {
      out.push(`${k.replace(/_/g, ' ')}: ${runs.map((p) => `${p[k] ?? 'not recorded'} (${p.workers} worker${p.workers === 1 ? '' : 's'})`).join(' vs ')}`);
    }
  }
  return out;
}

/** The worker counts whose run folders a sweep folder holds (runs/w<N>), ascending. */
export function sweepWorkerCounts(out: string): number[] {
  const runs = path.join(out, 'runs');
  if (!fs.existsSync(runs)) return [];
  return fs.readdirSync(runs).filter((d) => /^w\d+$/.test(d)).map((d) => Number(d.slice(1))).sort((a, b) => a - b);
}

/** What a sweep folder holds besides what sweeps write (runs/, the gathered tables, logs): the user's own files. */
const SWEEP_FILE = /^(runs|epochs\.csv|lines\.csv|threads\.csv|lines-by-workers\.csv|machine\.json|(train-w\d+\.log)|((line-profile|loop-waits|trace)-w\d+\.(txt|json)))$/;

/**
 * The study the training arguments ask for, as a run's config would record it (backend and
 * compute threads as they would resolve here), to hold against the runs a sweep folder has.
 */
async function requestedStudy(trainArgs: string[]): Promise<RunConfig> {
  const asked = parseTrainArgs(trainArgs);
  const backend = asked.backend === 'auto' ? await autoBackendName() : asked.backend;
  // The default threads and split are one choice (the thread sweep read once); threads asked for without a split are data parallel.
  const choice = asked.computeThreads === undefined ? chooseComputeThreads(backend, process.env, asked.model) : undefined;
  return {
    options: asked, backend: asked.backend, engine: '', backend_line: '', machine: undefined!, versions: {},
    compute_threads: asked.computeThreads ?? choice!.threads,
    compute_split: asked.computeSplit ?? choice?.split ?? 'batch',
    data: { name: asked.download ? 'download' : asked.data, train: 0, test: 0, note: '', fingerprint: fingerprintOf(asked) },
  };
}

/**
 * A sweep folder holds one study: a request whose settings differ from a run already in it
 * (another model, data, limit, batch size, optimizer, backend, compute threads; fewer epochs
 * than a run has done) is refused naming each difference, before anything is trained; so are
 * files of the user's own in the folder.
 */
export async function checkOneStudy(out: string, trainArgs: string[]): Promise<void> {
  const foreign = foreignEntries(out, (name) => SWEEP_FILE.test(name));
  if (foreign.length) {
    throw new UserError(`--out ${out} holds files that are not a worker study's (${someNames(foreign)}): nothing was written; ` +
      'choose an empty or new folder for the study');
  }
  const runs = sweepWorkerCounts(out).map((w) => ({ w, run: runFolder(out, w) })).filter(({ run }) => run.isRun);
  if (!runs.length) return;
  const asked = await requestedStudy(trainArgs);
  const lines: string[] = [];
  for (const { w, run } of runs) {
    const config = run.readConfig();
    const done = run.readMetrics().length;
    for (const d of studyDifferences(config, asked)) {
      if (d.flag === '--epochs' && asked.options.epochs >= done) continue; // more epochs continue every run alike
      lines.push(`  ${d.flag}: the run with ${workerWord(w)} has ${d.flag === '--epochs' ? `${done} done` : show(d.a)}, asked for ${show(d.b)}`);
    }
  }
  if (lines.length) {
    throw new UserError(`--out ${out} holds a study made with other settings than asked for:\n${lines.join('\n')}\n` +
      'A sweep folder holds one study: use another --out for this one, or --fresh to replace the runs in it.');
  }
}

const workerWord = (w: number) => `${w} worker${w === 1 ? '' : 's'}`;
const show = (v: unknown) => (v === null || v === undefined ? 'not set' : String(v));

/** The run folder of one worker count in a sweep. */
export const runFolder = (out: string, workers: number) => new RunFolder(path.join(out, 'runs', `w${workers}`));

function epochsWanted(trainArgs: string[]): number {
  const i = trainArgs.indexOf('--epochs');
  return i >= 0 ? Number(trainArgs[i + 1]) : 5;
}

/**
 * Whether every worker count's run of the sweep in `out` has all its epochs and its line
 * profile, in the current format (lines tagged with what they are).
 */
export function sweepComplete(out: string, workers: number[], epochs: number): boolean {
  return workers.every((w) => {
    const run = runFolder(out, w);
    return run.isComplete(epochs, true) && run.readLineProfileRows().every((r) => typeof r.tag === 'string');
  });
}

/**
 * Runs `train` for one worker count in a fresh process, echoing and logging its output.
 * A complete run is kept; an interrupted one (e.g. by a Slurm time limit) is resumed.
 * SIGUSR1/SIGTERM are passed on to the training process, which stops cleanly.
 */
async function trainOnce(options: SweepOptions, workers: number): Promise<void> {
  const run = runFolder(options.out, workers);
  const wanted = epochsWanted(options.trainArgs);
  if (options.fresh) fs.rmSync(run.dir, { recursive: true, force: true });
  if (run.isComplete(wanted, true)) {
    options.log(`=== ${workers} workers: complete in ${run.dir} (${run.readMetrics().length} epochs), kept`);
    return;
  }
  const resume = run.has('lastCheckpoint') ? ['--resume', run.dir] : [];
  if (!resume.length) fs.rmSync(run.dir, { recursive: true, force: true });
  const logFile = path.join(options.out, `train-w${workers}.log`);
  const log = fs.createWriteStream(logFile, { flags: resume.length ? 'a' : 'w' });
  const args = [path.join(projectRoot(), 'dist', 'bin', 'train.js'), ...options.trainArgs,
    '--workers', String(workers), '--profile', '--plain', '--out', run.dir, ...resume];
  options.log(`\n=== ${workers} worker${workers === 1 ? '' : 's'}: node ${args.map((a) => path.relative(process.cwd(), a) || a).join(' ')}`);
  const child = spawn(process.execPath, ['--enable-source-maps', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGUSR1', 'SIGTERM', 'SIGINT'];
  for (const sig of signals) process.on(sig, forward);
  const echo = (stream: NodeJS.ReadableStream) => readline.createInterface({ input: stream }).on('line', (line) => {
    log.write(`${line}\n`);
    options.log(`[w${workers}] ${line}`);
  });
  echo(child.stdout);
  echo(child.stderr);
  const code: number = await new Promise((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  for (const sig of signals) process.off(sig, forward);
  await new Promise((resolve) => log.end(resolve));
  if (code === 3) {
    throw new UserError(`training with ${workers} workers was stopped by a signal; ${options.resumeHint ?? (options.fresh ? 'run the same command without --fresh' : 'run the same command again')} ` +
      `to resume it (kept in ${run.dir})`, 3);
  }
  if (code !== 0) throw new UserError(`training with ${workers} workers failed (exit code ${code}); its output is in ${logFile}`);
}

/**
 * Each source line's total time at each worker count, summed over epochs, keyed by
 * function and line (a profile holds the epoch loop and the training step).
 */
export function linesByWorkers(rows: TimedLine[], workers: number[]): LineByWorkers[] {
  const byKey = new Map<string, LineByWorkers>();
  for (const r of rows) {
    const key = `${r.function}:${r.line}`;
    let row = byKey.get(key);
    if (!row) {
      row = { function: r.function, line: r.line, contents: r.contents };
      for (const w of workers) row[`time_w${w}`] = 0;
      byKey.set(key, row);
    }
    row[`time_w${r.workers}`] = Number(row[`time_w${r.workers}`] ?? 0) + r.time_s;
  }
  // Functions in the order they first appear (the epoch loop first), lines in source order.
  const order = [...new Set(rows.map((r) => r.function))];
  return [...byKey.values()].sort((a, b) => order.indexOf(a.function) - order.indexOf(b.function) || a.line - b.line);
}

/** Reads the runs of a sweep folder into danfo tables and writes epochs.csv / lines.csv. */
export function gatherSweep(out: string, workers: number[]): SweepTables {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dfd = require('danfojs-node') as typeof import('danfojs-node');
  const provenance: Provenance[] = [];
  const epochRows: Record<string, string | number | null>[] = [];
  const lineRows: LineRow[] = [];
  const threadRows: (ThreadSummary & { workers: number })[] = [];
  for (const w of workers) {
    const run = runFolder(out, w);
    const missing = run.missingForProfile() ?? (run.has('loopWaits') ? undefined : RUN_FILES.loopWaits);
    if (missing) throw new UserError(`${run.dir}: missing ${missing}: did the run with ${w} workers finish?`);
    const config = run.readConfig();
    const p = provenanceOf(run, w);
    provenance.push(p);
    for (const m of run.readMetrics()) {
      epochRows.push({
        ...p, epoch: m.epoch, train_seconds: m.train_seconds, test_seconds: m.test_seconds,
        samples_per_second: m.samples_per_second, train_loss: m.train_loss, test_loss: m.test_loss,
        test_accuracy: m.test_accuracy, compute_threads: m.compute_threads ?? p.compute_threads, backend: m.backend,
        data: config.data.name, train_samples: config.data.train, epoch_finished_at: m.finished_at ?? null,
      });
    }
    lineRows.push(...run.readLineProfileRows());
    threadRows.push(...run.readThreadSummary().map((t) => ({ workers: w, ...t })));
    fs.copyFileSync(run.file('lineProfileText'), path.join(out, `line-profile-w${w}.txt`));
    if (run.has('trace')) fs.copyFileSync(run.file('trace'), path.join(out, `trace-w${w}.json`));
    fs.copyFileSync(run.file('loopWaits'), path.join(out, `loop-waits-w${w}.json`));
  }
  const epochs = new dfd.DataFrame(epochRows);
  const lines = new dfd.DataFrame(lineRows);
  writeFileAtomic(path.join(out, 'epochs.csv'), dataFrameToCsv(epochs));
  writeFileAtomic(path.join(out, 'lines.csv'), dataFrameToCsv(lines));
  if (threadRows.length) writeFileAtomic(path.join(out, 'threads.csv'), dataFrameToCsv(new dfd.DataFrame(threadRows)));
  // Where each run was measured, from its own record; and whether they compare like for like.
  const differences = conditionDifferences(provenance);
  writeFileAtomic(path.join(out, 'machine.json'), JSON.stringify({ like_for_like: differences.length === 0, differences, runs: provenance }, null, 2) + '\n');
  const byLine = linesByWorkers(lineRows.filter(onMainThread) as (LineRow & TimedLine)[], workers);
  writeFileAtomic(path.join(out, 'lines-by-workers.csv'), dataFrameToCsv(new dfd.DataFrame(byLine)));
  return { epochs, lines, byLine };
}

/** Trains once per worker count (fresh processes), then gathers the tables. One process at a time per sweep folder. */
export async function runSweep(options: SweepOptions): Promise<SweepTables> {
  const lock = FolderLock.acquire(options.out, 'sweep folder');
  try {
    options = await withStudyComputeThreads(options);
    if (options.fresh) {
      // Every run goes, not only the requested worker counts': the folder then holds this study alone.
      for (const w of sweepWorkerCounts(options.out)) fs.rmSync(runFolder(options.out, w).dir, { recursive: true, force: true });
    } else {
      await checkOneStudy(options.out, options.trainArgs);
    }
    for (const w of options.workers) await trainOnce(options, w);
    return gatherSweep(options.out, options.workers);
  } finally {
    lock.release();
  }
}

/**
 * Every run of the study on the same compute threads, chosen once (studyComputeThreads: the loader
 * workers keep their CPUs), unless --compute-threads is given; said in the log with why.
 */
async function withStudyComputeThreads(options: SweepOptions): Promise<SweepOptions> {
  const asked = parseTrainArgs(options.trainArgs);
  if (asked.computeThreads !== undefined) return options;
  const backend = asked.backend === 'auto' ? await autoBackendName() : asked.backend;
  const choice = studyComputeThreads(backend, process.env, asked.model, options.workers, asked.batchSize, asked.computeSplit);
  const split = choice.threads > 1 ? `, ${choice.split === 'ops' ? 'split operations' : 'data parallel'}` : '';
  options.log(`Compute threads for every run: ${choice.threads}${split} (${choice.why})`);
  return { ...options, trainArgs: [...options.trainArgs, '--compute-threads', String(choice.threads),
    ...(asked.computeSplit === undefined ? ['--compute-split', choice.split] : [])] };
}

export interface EpochRow {
  workers: number; epoch: number; train_seconds: number; test_accuracy: number; train_loss: number; test_loss: number; samples_per_second: number;
  /** Threads computing each step (absent in runs from before data-parallel training: 1). */
  compute_threads?: number;
}
export type SweepLine = Pick<LineRow, 'file' | 'function' | 'line' | 'contents' | 'hits' | 'time_s' | 'tag'> & { workers: number; epoch: number; thread?: string };

/** A row of the training loop's thread (runs from before rows carried a thread were all main-thread rows). */
export const onMainThread = (r: object): boolean => {
  const thread = (r as { thread?: unknown }).thread;
  return thread === undefined || thread === 'main';
};

/** A sweep folder's results, as the report and notebooks use them. */
export interface SweepData {
  dir: string;
  workers: number[];
  epochs: EpochRow[];
  /** The training loop's lines (main thread). */
  lines: SweepLine[];
  /** The loader workers' lines, one row per worker, line and epoch (thread 'loader worker N'). */
  workerLines: SweepLine[];
  /** Per-thread summaries of each run's timeline, with the worker count ([] for runs recorded before timelines). */
  threads: (ThreadSummary & { workers: number })[];
  /** Each run's timeline (from trace.json), by worker count; absent for runs recorded before timelines. */
  timelines: Record<number, ThreadTimeline[]>;
  waits: LoopWaits[];
  /** Where and when each worker count was measured (in the order of `workers`). */
  provenance: Provenance[];
  /** How the runs' conditions differ; [] when they compare like for like. */
  differences: string[];
  /** From the runs' config.json. */
  config: { backend: string; engine: string; backendLine?: string; data: string; note: string; train: number; test: number; epochs: number; batchSize: number; model: string;
    /** How the compute threads shared a step (runs from before the choice: 'batch'). */
    computeSplit?: 'batch' | 'ops' };
  texts: Record<number, string>;
  /** Recorded before profile lines carried tags: only the wait for data is known (from the loop waits). */
  untagged?: boolean;
}

/**
 * Rows of a run recorded before lines were tagged (the profile format before 2026-11-25):
 * the loop headers are known from its loop waits and tagged `data`; other lines keep no
 * tag (`tag` stays undefined so that readers can tell).
 */
function withTags(run: RunFolder, rows: SweepLine[]): SweepLine[] {
  if (rows.every((r) => typeof r.tag === 'string')) return rows;
  const headers = new Set(run.readLoopWaits().map((w) => `${w.function}:${w.line}`));
  if (!headers.size) throw new UserError(`${run.dir}: its line profile carries no tags and it has no loop-waits.json: the wait for data cannot be told apart; rerun the sweep (--fresh)`);
  return rows.map((r) => (typeof r.tag === 'string' ? r : headers.has(`${r.function}:${r.line}`) ? { ...r, tag: 'data' } : { ...r, tag: undefined as unknown as string }));
}

/** Reads a sweep folder written by `npm run profile` (or `npm run report`). */
export function readSweep(dir: string): SweepData {
  if (!fs.existsSync(path.join(dir, 'runs'))) throw new UserError(`${dir}: no runs/ folder: not a sweep written by npm run profile`);
  const workers = sweepWorkerCounts(dir);
  if (workers.length < 2) throw new UserError(`${dir}: a sweep needs runs for at least two worker counts, found ${workers.length}`);
  const data: SweepData = {
    dir, workers, epochs: [], lines: [], workerLines: [], threads: [], timelines: {}, waits: [], provenance: [], differences: [], config: undefined!, texts: {},
  };
  for (const w of workers) {
    const run = runFolder(dir, w);
    const missing = run.missingForProfile();
    if (missing) throw new UserError(`${run.dir}: missing ${missing}: the run with ${w} workers did not finish. Finish it with ` +
      `npm run profile -- --workers ${workers.join(',')} --out ${dir} (and the same training options), which resumes it`);
    const metrics = run.readMetrics();
    data.epochs.push(...metrics.map((e) => ({ ...e, workers: w })));
    const rows = withTags(run, run.readLineProfileRows() as unknown as SweepLine[]);
    if (rows.some((r) => r.tag === undefined)) data.untagged = true;
    // The profile must cover the epochs the metrics do (a resumed run's profile from before v2 covers only its last attempt).
    const profiled = [...new Set(rows.map((r) => r.epoch))].sort((a, b) => a - b).join(',');
    const measured = metrics.map((m) => m.epoch).join(',');
    if (profiled !== measured) {
      throw new UserError(`${run.dir}: its line profile covers epochs ${profiled || 'none'} but its metrics epochs ${measured}: ` +
        'the profiles would not compare like for like; rerun this sweep (npm run report -- --fresh, or npm run profile -- --fresh)');
    }
    data.lines.push(...rows.filter(onMainThread));
    data.workerLines.push(...rows.filter((r) => String(r.thread ?? '').startsWith('loader')));
    data.threads.push(...run.readThreadSummary().map((t) => ({ workers: w, ...t })));
    const trace = run.readTrace();
    if (trace) data.timelines[w] = fromTraceFile(trace);
    data.waits.push(...run.readLoopWaits());
    data.texts[w] = run.readLineProfileText();
    data.provenance.push(provenanceOf(run, w));
    const c = run.readConfig();
    data.config ??= {
      backend: c.backend, engine: c.engine, backendLine: c.backend_line, data: c.data.name, note: c.data.note, train: c.data.train, test: c.data.test,
      epochs: c.options.epochs, batchSize: c.options.batchSize, model: c.options.model, computeSplit: c.compute_split ?? 'batch',
    };
  }
  // One study: the runs' settings other than the worker count are the same (the conditions they ran under are compared below).
  const configs = workers.map((w) => runFolder(dir, w).readConfig());
  const mixed = configs.slice(1).flatMap((c, i) => studyDifferences(configs[0], c, false).map((d) =>
    `  ${d.flag}: ${show(d.a)} (${workerWord(workers[0])}) vs ${show(d.b)} (${workerWord(workers[i + 1])})`));
  if (mixed.length) {
    throw new UserError(`${dir}: its runs belong to different studies, which one report cannot compare:\n${mixed.join('\n')}\n` +
      'Rerun the sweep into a folder of its own (npm run profile -- --out NEW ...), or with --fresh');
  }
  const epochSets = new Set(workers.map((w) => data.epochs.filter((e) => e.workers === w).map((e) => e.epoch).join(',')));
  if (epochSets.size > 1) {
    throw new UserError(`${dir}: its runs cover different epochs (${workers.map((w) => `${w} workers: ${data.epochs.filter((e) => e.workers === w).length}`).join(', ')}); ` +
      'finish the shorter ones (npm run profile with the same --out resumes them) or rerun the sweep');
  }
  data.differences = conditionDifferences(data.provenance);
  return data;
}
