/**
 * The run folder: the one module that writes and reads a training run's files. It owns
 * their names and record types; training writes through it, and listing, comparing,
 * sweeps and the report read through it.
 *
 *   config.json       RunConfig: options, backend, compute threads, data, machine, versions
 *   metrics.jsonl     one EpochMetrics per epoch
 *   batches.jsonl     one BatchRecord per logged batch
 *   line-profile.txt  line_profiler's text (with --profile)
 *   line-profile.json LineRow per source line and epoch (with --profile)
 *   loop-waits.json   every wait of a loop header, per epoch (with --profile)
 *   interrupted.json  present while the last attempt was stopped by a signal
 *   last.ckpt, best.ckpt
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LineRow, WaitRow } from '../profiling';
import { writeFileAtomic } from '../util/files';
import { readJsonLines } from '../util/jsonl';
import type { MachineInfo } from '../util/machine';
import { UserError } from '../util/errors';

export const RUN_FILES = {
  config: 'config.json',
  metrics: 'metrics.jsonl',
  batches: 'batches.jsonl',
  lineProfileText: 'line-profile.txt',
  lineProfileRows: 'line-profile.json',
  loopWaits: 'loop-waits.json',
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
  profile?: boolean;
  out?: string;
}

export interface RunConfig {
  options: RecordedOptions;
  backend: string;
  engine: string;
  backend_line: string;
  compute_threads: number;
  machine: MachineInfo;
  versions: Record<string, string>;
  data: { name: string; train: number; test: number; note: string };
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
}

export interface BatchRecord { epoch: number; batch: number; samples: number; loss: number }

/** Each wait of a loop header (the wait for the next batch) in one epoch. */
export type LoopWaits = WaitRow & { workers: number; epoch: number };

export interface InterruptedRecord { signal: string; epoch: number; at: string }

/** A line profile of a run: the text, its rows per epoch and the loop-header waits. */
export interface LineProfileFiles { text: string; rows: LineRow[]; waits: WaitRow[] }

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

  /** Whether the folder holds a run (its config.json). */
  get isRun(): boolean {
    return this.has('config');
  }

  create(): this {
    fs.mkdirSync(this.dir, { recursive: true });
    return this;
  }

  private readJson<T>(name: RunFile): T {
    const file = this.file(name);
    if (!fs.existsSync(file)) throw new UserError(`${this.dir}: missing ${RUN_FILES[name]}`);
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  }

  private writeJson(name: RunFile, value: unknown, indent?: number): void {
    writeFileAtomic(this.file(name), JSON.stringify(value, null, indent) + '\n');
  }

  writeConfig(config: RunConfig): void {
    this.writeJson('config', config, 2);
  }

  readConfig(): RunConfig {
    if (!this.isRun) throw new UserError(`${this.dir}: not a run folder (no ${RUN_FILES.config})`);
    return this.readJson<RunConfig>('config');
  }

  readMetrics(): EpochMetrics[] {
    return readJsonLines<EpochMetrics>(this.file('metrics'));
  }

  appendMetrics(m: EpochMetrics): void {
    fs.appendFileSync(this.file('metrics'), JSON.stringify(m) + '\n');
  }

  readBatches(): BatchRecord[] {
    return readJsonLines<BatchRecord>(this.file('batches'));
  }

  appendBatch(b: BatchRecord): void {
    fs.appendFileSync(this.file('batches'), JSON.stringify(b) + '\n');
  }

  /** A new run in this folder: no metrics or batch log of an earlier one. */
  startFresh(): void {
    fs.rmSync(this.file('metrics'), { force: true });
    fs.rmSync(this.file('batches'), { force: true });
  }

  /** Keeps the metrics and batch log up to `epoch` (a resumed run writes the later ones again); returns the metrics kept. */
  keepThrough(epoch: number): EpochMetrics[] {
    const metrics = this.readMetrics().filter((m) => m.epoch <= epoch);
    if (this.has('metrics')) writeFileAtomic(this.file('metrics'), jsonLines(metrics));
    if (this.has('batches')) writeFileAtomic(this.file('batches'), jsonLines(this.readBatches().filter((b) => b.epoch <= epoch)));
    return metrics;
  }

  writeLineProfile(profile: LineProfileFiles): void {
    writeFileAtomic(this.file('lineProfileText'), profile.text);
    writeFileAtomic(this.file('lineProfileRows'), JSON.stringify(profile.rows, null, 1) + '\n');
    writeFileAtomic(this.file('loopWaits'), JSON.stringify(profile.waits) + '\n');
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
