/**
 * The 1-vs-8-worker study: trains once per worker count, each in a fresh process with
 * the line profiler on, then gathers the per-epoch metrics and per-line timings of all
 * runs into danfo tables (epochs.csv, lines.csv) beside each run's line_profiler text.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import type { DataFrame } from 'danfojs-node';
import { dataFrameToCsv } from './csv';
import { writeFileAtomic } from './data/idx';
import { readJsonLines } from './jsonl';
import { UserError } from './errors';
import { machineInfo } from './machine';
import { projectRoot } from './paths';
import type { LineRow } from './profiling';
import type { EpochMetrics } from './train';

export interface SweepOptions {
  workers: number[];
  out: string;
  /** Training options passed through to every run (--epochs, --data, --limit, ...). */
  trainArgs: string[];
  log: (line: string) => void;
  /** Start every run over instead of resuming or skipping what is there. */
  fresh?: boolean;
}

export interface SweepTables {
  epochs: DataFrame;
  lines: DataFrame;
  /** Per source line: total seconds at each worker count (columns time_w1, time_w8, ...). */
  byLine: Record<string, string | number>[];
}

export const runDir = (out: string, workers: number) => path.join(out, 'runs', `w${workers}`);

function epochsWanted(trainArgs: string[]): number {
  const i = trainArgs.indexOf('--epochs');
  return i >= 0 ? Number(trainArgs[i + 1]) : 5;
}

function epochsDone(dir: string): number {
  return readJsonLines(path.join(dir, 'metrics.jsonl')).length;
}

/**
 * Runs `train` for one worker count in a fresh process, echoing and logging its output.
 * A complete run is kept; an interrupted one (e.g. by a Slurm time limit) is resumed.
 * SIGUSR1/SIGTERM are passed on to the training process, which stops cleanly.
 */
async function trainOnce(options: SweepOptions, workers: number): Promise<void> {
  const dir = runDir(options.out, workers);
  const wanted = epochsWanted(options.trainArgs);
  if (options.fresh) fs.rmSync(dir, { recursive: true, force: true });
  const done = epochsDone(dir);
  if (done >= wanted && fs.existsSync(path.join(dir, 'line-profile.txt'))) {
    options.log(`=== ${workers} workers: complete in ${dir} (${done} epochs), kept`);
    return;
  }
  const resume = fs.existsSync(path.join(dir, 'last.ckpt')) ? ['--resume', dir] : [];
  if (!resume.length) fs.rmSync(dir, { recursive: true, force: true });
  const logFile = path.join(options.out, `train-w${workers}.log`);
  const log = fs.createWriteStream(logFile, { flags: resume.length ? 'a' : 'w' });
  const args = [path.join(projectRoot(), 'dist', 'bin', 'train.js'), ...options.trainArgs,
    '--workers', String(workers), '--profile', '--plain', '--out', dir, ...resume];
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
  if (code === 3) throw new UserError(`training with ${workers} workers was stopped by a signal; run the same command again to resume`, 3);
  if (code !== 0) throw new UserError(`training with ${workers} workers failed (exit code ${code}); its output is in ${logFile}`);
}

/** Reads the runs of a sweep folder into danfo tables and writes epochs.csv / lines.csv. */
export function gatherSweep(out: string, workers: number[]): SweepTables {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dfd = require('danfojs-node') as typeof import('danfojs-node');
  const machine = machineInfo();
  const epochRows: Record<string, string | number>[] = [];
  const lineRows: LineRow[] = [];
  for (const w of workers) {
    const dir = runDir(out, w);
    for (const file of ['config.json', 'metrics.jsonl', 'line-profile.json', 'line-profile.txt', 'loop-waits.json']) {
      if (!fs.existsSync(path.join(dir, file))) throw new UserError(`${dir}: missing ${file}: did the run with ${w} workers finish?`);
    }
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    for (const m of readJsonLines<EpochMetrics>(path.join(dir, 'metrics.jsonl'))) {
      epochRows.push({
        workers: w, epoch: m.epoch, train_seconds: m.train_seconds, test_seconds: m.test_seconds,
        samples_per_second: m.samples_per_second, train_loss: m.train_loss, test_loss: m.test_loss,
        test_accuracy: m.test_accuracy, compute_threads: m.compute_threads ?? 1, backend: m.backend, engine: config.engine, data: config.data.name,
        train_samples: config.data.train, batch_size: config.options.batchSize, ...machine,
      });
    }
    lineRows.push(...(JSON.parse(fs.readFileSync(path.join(dir, 'line-profile.json'), 'utf8')) as LineRow[]));
    fs.copyFileSync(path.join(dir, 'line-profile.txt'), path.join(out, `line-profile-w${w}.txt`));
    fs.copyFileSync(path.join(dir, 'loop-waits.json'), path.join(out, `loop-waits-w${w}.json`));
  }
  const epochs = new dfd.DataFrame(epochRows);
  const lines = new dfd.DataFrame(lineRows);
  writeFileAtomic(path.join(out, 'epochs.csv'), dataFrameToCsv(epochs));
  writeFileAtomic(path.join(out, 'lines.csv'), dataFrameToCsv(lines));
  writeFileAtomic(path.join(out, 'machine.json'), JSON.stringify(machine, null, 2) + '\n');

  // Side by side: total time of each line (all epochs) at each worker count.
  const totals = lines.groupby(['line', 'workers']).col(['time_s']).sum();
  const contents = new Map(lineRows.map((r) => [r.line, r.contents]));
  const byLineMap = new Map<number, Record<string, string | number>>();
  for (const [line, w, t] of totals.values as [number, number, number][]) {
    const row = byLineMap.get(line) ?? { line, contents: contents.get(line) ?? '' };
    row[`time_w${w}`] = t;
    byLineMap.set(line, row);
  }
  const byLine = [...byLineMap.values()].sort((a, b) => Number(a.line) - Number(b.line));
  writeFileAtomic(path.join(out, 'lines-by-workers.csv'), dataFrameToCsv(new dfd.DataFrame(byLine)));
  return { epochs, lines, byLine };
}

/** Trains once per worker count (fresh processes), then gathers the tables. */
export async function runSweep(options: SweepOptions): Promise<SweepTables> {
  fs.mkdirSync(options.out, { recursive: true });
  for (const w of options.workers) await trainOnce(options, w);
  return gatherSweep(options.out, options.workers);
}
