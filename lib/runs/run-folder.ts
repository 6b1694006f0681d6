/**
 * The run folder: the one module that writes and reads a training run's files. It owns
 * their names and record types; training writes through it, and listing, comparing,
 * sweeps and the report read through it.
 *
 *   config.json       RunConfig: options, backend, compute threads, data, machine, versions
 *   metrics.jsonl     one EpochMetrics per epoch
 *   batches.jsonl     one BatchRecord per logged batch
 *   line-profile.txt  line_profiler's text (with --profile)
 *   line-profile.json LineRow per source line, epoch and thread (with --profile)
 *   loop-waits.json   every wait of a loop header, per epoch (with --profile)
 *   line-profile-parts.json  the profile's raw counts per epoch, so that a resumed run's
 *                     profile covers every epoch (with --profile)
 *   trace.json        every thread's timeline, Chrome trace-event format (with --profile)
 *   threads.json      ThreadSummary per thread: busy share, batches built, queue (with --profile)
 *   interrupted.json  present while the last attempt was stopped by a signal
 *   last.ckpt, best.ckpt
 *   .lock             held by the one process writing the folder (lock.ts)
 *
 * Reading a damaged or missing file is a UserError naming the file; so is a write the file
 * system refuses.
 */
import type { GpuAdapter } from '../engine/webgpu/adapter';
import fs from 'node:fs';
import path from 'node:path';
import type { LineRow, StoredPart, ThreadSummary, TraceFile, WaitRow } from '../profiling';
import { appendFile, writeFileAtomic } from '../util/files';
import { readJsonFile, readJsonLines } from '../util/jsonl';
import { FolderLock } from './lock';
import type { MachineInfo } from '../util/machine';
import { UserError } from '../util/errors';
import { foreignEntries } from '../util/path-checks';

export const RUN_FILES = {
  config: 'config.json',
  metrics: 'metrics.jsonl',
  batches: 'batches.jsonl',
  lineProfileText: 'line-profile.txt',
  lineProfileRows: 'line-profile.json',
  loopWaits: 'loop-waits.json',
  profileParts: 'line-profile-parts.json',
  trace: 'trace.json',
  threadSummary: 'threads.json',
  interrupted: 'interrupted.json',
  lastCheckpoint: 'last.ckpt',
  bestCheckpoint: 'best.ckpt',
} as const;
export type RunFile = keyof typeof RUN_FILES;

/**
 * The training options as config.json records them: the fields that readers of a run use.
 * training/options.ts defines them all, with their defaults and checks.
 */
export interface RecordedOptions {
  model: string;
  /** 'embedded' or a folder of IDX files. */
  data: string;
  epochs: number;
  batchSize: number;
  seed: number;
  /** DataLoader worker threads. */
  workers: number;
  limit?: number;
  computeThreads?: number;
  computeSplit?: string;
  profile?: boolean;
  out?: string;
}

export interface RunConfig {
  options: RecordedOptions;
  /** When this attempt started (ISO 8601; a resumed run records its latest start). */
  started_at?: string;
  backend: string;
  engine: string;
  backend_line: string;
  /** On webgpu: the adapter (vendor, device, driver, whether it is software). */
  adapter?: GpuAdapter;
  compute_threads: number;
  /** How the compute threads shared a step (absent in runs from before split operations: 'batch'). */
  compute_split?: 'batch' | 'ops';
  machine: MachineInfo;
  versions: Record<string, string>;
  /** `fingerprint`: the content's hash (dataFingerprint); absent in runs recorded before it was kept. */
  data: { name: string; train: number; test: number; note: string; fingerprint?: string };
}

export interface EpochMetrics {
  epoch: number;
  lr: number;
  train_loss: number;
  test_loss: number;
  test_accuracy: number;
  test_correct: number;
  test_total: number;
  train_seconds: number;
  test_seconds: number;
  samples_per_second: number;
  backend: string;
  workers: number;
  compute_threads: number;
  num_tensors: number;
  /** When the epoch's test pass ended (ISO 8601). */
  finished_at?: string;
}

/** The metrics.jsonl line of an epoch whose loss became NaN or infinite (the run stopped there). */
export interface DivergenceRecord { epoch: number; lr: number; diverged: { batch: number; loss: string } }

export interface BatchRecord { epoch: number; batch: number; samples: number; loss: number }

/** Each wait of a loop header (the wait for the next batch) in one epoch. */
export type LoopWaits = WaitRow & { workers: number; epoch: number };

export interface InterruptedRecord { signal: string; epoch: number; at: string }

/** A line profile of a run: the text, its rows per epoch and the loop-header waits. */
export interface LineProfileFiles {
  text: string; rows: LineRow[]; waits: WaitRow[]; parts: StoredPart[];
  /** Every thread's timeline (Chrome trace-event format) and its per-thread summary. */
  trace?: TraceFile; threads?: ThreadSummary[];
}

const jsonLines = (records: unknown[]) => records.map((r) => JSON.stringify(r) + '\n').join('');

export class RunFolder {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = path.resolve(dir);
  }

  file(name: RunFile): string {
    return path.join(this.dir, RUN_FILES[name]);
  }

  has(name: RunFile): boolean {
    return fs.existsSync(this.file(name));
  }

  /**
   * What the folder holds that no run writes: files of the user's own, or a config.json that is
   * not a run's. [] for a missing or empty folder, or a run's (a new run must not replace them).
   */
  foreignContents(): string[] {
    const own = new Set<string>(Object.values(RUN_FILES));
    const foreign = foreignEntries(this.dir, (name) => own.has(name));
    if (this.isRun) {
      try {
        this.readConfig();
      } catch {
        foreign.unshift(`${RUN_FILES.config} (not a run's config)`);
      }
    }
    return foreign;
  }

  /** Whether the folder holds a run (its config.json). */
  get isRun(): boolean {
    return this.has('config');
  }

  /** Takes the folder for this process (one writer at a time); release it when done. */
  lock(): FolderLock {
    return FolderLock.acquire(this.dir, 'run folder');
  }

  private readJson<T>(name: RunFile): T {
    const file = this.file(name);
    if (!fs.existsSync(file)) throw new UserError(`${this.dir}: missing ${RUN_FILES[name]}`);
    return readJsonFile<T>(file);
  }

  private writeJson(name: RunFile, value: unknown, indent?: number): void {
    writeFileAtomic(this.file(name), JSON.stringify(value, null, indent) + '\n');
  }

  writeConfig(config: RunConfig): void {
    this.writeJson('config', config, 2);
  }

  readConfig(): RunConfig {
    if (!this.isRun) throw new UserError(`${this.dir}: not a run folder (no ${RUN_FILES.config})`);
    const config = this.readJson<RunConfig>('config');
    const o = config?.options;
    if (!o || typeof o.model !== 'string' || typeof o.epochs !== 'number' || typeof o.workers !== 'number' || !config.data) {
      throw new UserError(`${this.file('config')}: not a run's config (expected "options" with model, epochs and workers, and "data"): the file is damaged`);
    }
    return config;
  }

  /** What the run is, in a few words, for messages: "net, 3 of 5 epochs done, best 97.70%". */
  describe(): string {
    try {
      const config = this.readConfig();
      const metrics = this.readMetrics();
      const best = metrics.length ? `, best ${Math.max(...metrics.map((m) => m.test_accuracy)).toFixed(2)}%` : '';
      return `${config.options.model}, ${metrics.length} of ${config.options.epochs} epochs done${best}`;
    } catch (err) {
      return `unreadable: ${(err as Error).message}`;
    }
  }

  /** Whether the folder holds a run with at least one finished epoch (a checkpoint or a metrics line). */
  get hasProgress(): boolean {
    return this.has('lastCheckpoint') || this.readMetrics().length > 0;
  }

  /** The finished epochs' metrics (a divergence line is not an epoch). */
  readMetrics(): EpochMetrics[] {
    const metrics = readJsonLines<EpochMetrics | DivergenceRecord>(this.file('metrics')).filter((m): m is EpochMetrics => !('diverged' in m));
    const bad = metrics.findIndex((m) => !Number.isSafeInteger(m.epoch) || typeof m.test_accuracy !== 'number' || typeof m.train_loss !== 'number');
    if (bad >= 0) {
      throw new UserError(`${this.file('metrics')}: epoch record ${bad + 1} lacks its epoch, accuracy or loss (${JSON.stringify(metrics[bad]).slice(0, 60)}): the file is damaged`);
    }
    return metrics;
  }

  /** Where the run's loss became NaN or infinite, if it did. */
  readDivergence(): DivergenceRecord | undefined {
    return readJsonLines<EpochMetrics | DivergenceRecord>(this.file('metrics')).find((m): m is DivergenceRecord => 'diverged' in m);
  }

  appendDivergence(d: DivergenceRecord): void {
    appendFile(this.file('metrics'), JSON.stringify(d) + '\n');
  }

  appendMetrics(m: EpochMetrics): void {
    appendFile(this.file('metrics'), JSON.stringify(m) + '\n');
  }

  readBatches(): BatchRecord[] {
    return readJsonLines<BatchRecord>(this.file('batches'));
  }

  appendBatch(b: BatchRecord): void {
    appendFile(this.file('batches'), JSON.stringify(b) + '\n');
  }

  /** A new run in this folder: no metrics or batch log of an earlier one. */
  startFresh(): void {
    fs.rmSync(this.file('metrics'), { force: true });
    fs.rmSync(this.file('batches'), { force: true });
  }

  /**
   * Sets the records to those of the first `epoch` epochs (a resumed run writes the later ones
   * again): metrics.jsonl becomes `metrics` (the checkpoint's, which are written with it, when
   * it has them), the batch log keeps its lines up to `epoch`. Returns the metrics.
   */
  keepThrough(epoch: number, metrics?: EpochMetrics[]): EpochMetrics[] {
    const kept = (metrics ?? this.readMetrics()).filter((m) => m.epoch <= epoch);
    writeFileAtomic(this.file('metrics'), jsonLines(kept));
    if (this.has('batches')) writeFileAtomic(this.file('batches'), jsonLines(this.readBatches().filter((b) => b.epoch <= epoch)));
    return kept;
  }

  writeLineProfile(profile: LineProfileFiles): void {
    writeFileAtomic(this.file('profileParts'), JSON.stringify(profile.parts) + '\n');
    writeFileAtomic(this.file('lineProfileText'), profile.text);
    writeFileAtomic(this.file('lineProfileRows'), JSON.stringify(profile.rows, null, 1) + '\n');
    writeFileAtomic(this.file('loopWaits'), JSON.stringify(profile.waits) + '\n');
    if (profile.trace) writeFileAtomic(this.file('trace'), JSON.stringify(profile.trace) + '\n');
    if (profile.threads) writeFileAtomic(this.file('threadSummary'), JSON.stringify(profile.threads, null, 1) + '\n');
  }

  /** The run's timeline (trace.json); undefined for runs recorded before it was kept. */
  readTrace(): TraceFile | undefined {
    return this.has('trace') ? this.readJson<TraceFile>('trace') : undefined;
  }

  /** The per-thread summary (threads.json); [] for runs recorded before it was kept. */
  readThreadSummary(): ThreadSummary[] {
    return this.has('threadSummary') ? this.readJson<ThreadSummary[]>('threadSummary') : [];
  }

  /** The profile's parts (one per epoch) of the first `epoch` epochs; [] when none were kept. */
  readProfileParts(epoch: number): StoredPart[] {
    if (!this.has('profileParts')) return [];
    return this.readJson<StoredPart[]>('profileParts').filter((p) => Number(p.labels.epoch) <= epoch);
  }

  readLineProfileText(): string {
    return fs.readFileSync(this.file('lineProfileText'), 'utf8');
  }

  readLineProfileRows(): LineRow[] {
    return this.readJson<LineRow[]>('lineProfileRows');
  }

  /** The loop-header waits; [] for runs recorded before they were kept. */
  readLoopWaits(): LoopWaits[] {
    return this.has('loopWaits') ? this.readJson<LoopWaits[]>('loopWaits') : [];
  }

  markInterrupted(signal: string, epoch: number): void {
    const record: InterruptedRecord = { signal, epoch, at: new Date().toISOString() };
    this.writeJson('interrupted', record);
  }

  clearInterrupted(): void {
    fs.rmSync(this.file('interrupted'), { force: true });
  }

  /** All `epochs` epochs recorded, and (for a profiled run) its line profile written. */
  isComplete(epochs: number, profiled: boolean): boolean {
    return this.readMetrics().length >= epochs && (!profiled || this.has('lineProfileText'));
  }

  /** The files a profiled run must have for a sweep or report to read it; the first missing, if any. */
  missingForProfile(): string | undefined {
    const needed: RunFile[] = ['config', 'metrics', 'lineProfileRows', 'lineProfileText'];
    return needed.map((n) => RUN_FILES[n]).find((f) => !fs.existsSync(path.join(this.dir, f)));
  }
}

/**
 * The options that shape a run's result or its measurements: a resumed run keeps them, and
 * two runs that differ in one of them are two runs. (--epochs is not among them: raising it
 * continues a finished run.)
 */
export const IDENTITY_OPTIONS = ['model', 'data', 'download', 'limit', 'batchSize', 'testBatchSize', 'optimizer', 'lr', 'gamma',
  'momentum', 'seed', 'workers', 'computeThreads', 'computeSplit', 'backend', 'profile'] as const;
export type IdentityOption = (typeof IDENTITY_OPTIONS)[number];

/** The command-line flag of an option: batchSize → --batch-size. */
export const flagOf = (option: string) => `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A run's value of each identity option as it ran (compute threads and backend as resolved, not as requested). */
export function runIdentity(config: RunConfig): Record<IdentityOption, unknown> {
  const o = config.options as unknown as Record<string, unknown>;
  return Object.fromEntries(IDENTITY_OPTIONS.map((k) => [k,
    k === 'computeThreads' ? config.compute_threads : k === 'computeSplit' ? config.compute_split ?? 'batch'
      : k === 'backend' ? config.backend : o[k] ?? null])) as Record<IdentityOption, unknown>;
}

function sameValue(option: IdentityOption, run: unknown, asked: unknown): boolean {
  if (option === 'backend' && asked === 'auto') return true;
  if (option === 'data' && typeof run === 'string' && typeof asked === 'string') {
    const norm = (d: string) => (d === 'embedded' ? d : path.resolve(d));
    return norm(run) === norm(asked);
  }
  if (option === 'download' || option === 'profile') return Boolean(run) === Boolean(asked);
  return (run ?? null) === (asked ?? null);
}

/**
 * The options that make two runs one study (the worker study varies only --workers): what a
 * sweep's runs must share. The data is compared by content where both runs recorded it.
 */
export const STUDY_OPTIONS = IDENTITY_OPTIONS.filter((k) => !['workers', 'profile', 'download'].includes(k));

/**
 * How two runs' study options differ ("--model: net vs fc"); the data by its content fingerprint
 * where both have one. `conditions: false` leaves out the backend and compute threads, which a
 * sweep's runs may differ in when made apart (a Slurm array's tasks get CPUs of their own): the
 * report flags those as conditions instead.
 */
export function studyDifferences(a: RunConfig, b: RunConfig, conditions = true): { flag: string; a: unknown; b: unknown }[] {
  const [ia, ib] = [runIdentity(a), runIdentity(b)];
  const out: { flag: string; a: unknown; b: unknown }[] = [];
  for (const k of STUDY_OPTIONS) {
    if (!conditions && (k === 'backend' || k === 'computeThreads' || k === 'computeSplit')) continue;
    if (k === 'data' && a.data.fingerprint && b.data.fingerprint) {
      if (a.data.fingerprint !== b.data.fingerprint) out.push({ flag: '--data (content)', a: `${a.data.name} [${a.data.fingerprint}]`, b: `${b.data.name} [${b.data.fingerprint}]` });
    } else if (!sameValue(k, ia[k], ib[k])) {
      out.push({ flag: flagOf(k), a: ia[k], b: ib[k] });
    }
  }
  if (a.options.epochs !== b.options.epochs) out.push({ flag: '--epochs', a: a.options.epochs, b: b.options.epochs });
  return out;
}

export interface IdentityDifference { option: IdentityOption; flag: string; run: unknown; asked: unknown }

/** The identity options asked for (those `given` says were set) whose values differ from the run's. */
export function identityDifferences(config: RunConfig, asked: Record<string, unknown>, given: (option: string) => boolean): IdentityDifference[] {
  const run = runIdentity(config);
  return IDENTITY_OPTIONS.filter((k) => given(k) && asked[k] !== undefined && !sameValue(k, run[k], asked[k]))
    .map((k) => ({ option: k, flag: flagOf(k), run: run[k], asked: asked[k] }));
}
