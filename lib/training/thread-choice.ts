/**
 * How many compute threads a run gets by default, and why. Data-parallel replicas help a model
 * only when its step is long enough to share out (each replica also computes and sums the whole
 * weight gradient), which depends on the model and the machine. So the choice comes from a
 * measurement where there is one (`npm run bench -- --threads-sweep` records it per machine,
 * backend, batch size and software), else from a rule; the run's compute line says which.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MODELS } from '../models';
import { cpuAllotment } from '../util/machine';
import { installedVersions } from '../util/packages';
import { projectRoot } from '../util/paths';

/** Most replicas chosen by the rule: the batch of 64 is split this many ways at most. */
export const MAX_DEFAULT_THREADS = 4;

/** A measured count is chosen over a smaller one only when it is this much faster: timing noise must not pick more threads. */
const MEANINGFUL_GAIN = 1.03;

/** Backends that run a step on all cores or on a GPU themselves: one compute thread drives them. */
const SELF_PARALLEL: Record<string, string> = {
  tensorflow: 'libtensorflow threads (or uses the GPU) itself',
  webgpu: 'the GPU computes; one thread drives it',
};

/**
 * How compute threads share a step: `batch`, data-parallel replicas each training on a part
 * of the batch (data-parallel.ts); `ops`, one model whose convolutions and matrix products are
 * each split across the threads (intra-op: engine/wasm/kernel-pool.ts).
 */
export const COMPUTE_SPLITS = ['batch', 'ops'] as const;
export type ComputeSplit = typeof COMPUTE_SPLITS[number];

export interface ThreadChoice { threads: number; split: ComputeSplit; why: string }

/** What a thread sweep answers: identical only on the same kind of machine, backend, batch size and software. */
export interface SweepQuestion { machine: string; backend: string; batch_size: number; software: string }

export interface SweepRecord extends SweepQuestion {
  model: string;
  measured_at: string;
  /** samples/s per compute-thread count, data parallel (split 'batch') */
  samples_per_s: Record<string, number>;
  /** samples/s per compute-thread count with each operation split across the threads (split 'ops'; absent in older sweeps) */
  ops_samples_per_s?: Record<string, number>;
}

export function sweepQuestion(backend: string, batchSize: number): SweepQuestion {
  const versions = installedVersions(['@tensorflow/tfjs-backend-wasm']);
  const lab = (JSON.parse(fs.readFileSync(path.join(projectRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return {
    machine: `${os.cpus()[0]?.model?.trim() ?? 'unknown CPU'} x ${os.cpus().length}`,
    backend, batch_size: batchSize,
    software: `mnist-profiling-lab ${lab} (engine ${engineHash()}), tfjs-backend-wasm ${versions['@tensorflow/tfjs-backend-wasm'] ?? '-'}, ` +
      `Node ${process.versions.node.split('.')[0]}`,
  };
}

let engineHashCache: string | undefined;

/** The compiled engine and training code by content: a sweep of other kernels or another all-reduce is another question. */
function engineHash(): string {
  if (engineHashCache) return engineHashCache;
  const hash = crypto.createHash('sha256');
  const lib = path.join(__dirname, '..');
  for (const dir of ['engine', path.join('engine', 'wasm'), 'training']) {
    const full = path.join(lib, dir);
    if (!fs.existsSync(full)) continue;
    for (const f of fs.readdirSync(full).filter((n) => /\.(js|wasm)$/.test(n)).sort()) hash.update(f).update(fs.readFileSync(path.join(full, f)));
  }
  engineHashCache = hash.digest('hex').slice(0, 10);
  return engineHashCache;
}

/** Where thread sweeps are kept: $MNIST_LAB_CACHE, else the user's cache folder; none without a home. */
export function threadSweepsFile(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const base = env.MNIST_LAB_CACHE ?? (env.XDG_CACHE_HOME ? path.join(env.XDG_CACHE_HOME, 'mnist-profiling-lab')
    : env.HOME ? path.join(env.HOME, '.cache', 'mnist-profiling-lab') : undefined);
  return base && path.join(base, 'thread-sweeps.json');
}

export function readThreadSweeps(file: string | undefined): SweepRecord[] {
  if (!file || !fs.existsSync(file)) return [];
  try {
    const records = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
    return Array.isArray(records) ? records as SweepRecord[] : [];
  } catch {
    return []; // a damaged cache is no measurement: the rule decides, and the next sweep rewrites it
  }
}

const sameQuestion = (a: SweepQuestion, b: SweepQuestion) =>
  a.machine === b.machine && a.backend === b.backend && a.batch_size === b.batch_size && a.software === b.software;

/** Keeps a model's sweep, replacing the one for the same question (written whole, then renamed: never half a file). */
export function recordThreadSweep(file: string, record: SweepRecord): void {
  const others = readThreadSweeps(file).filter((r) => !(r.model === record.model && sameQuestion(r, record)));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify([...others, record], null, 1)}\n`);
  fs.renameSync(tmp, file);
}

/** The counts a thread sweep measures: 1, 2, 4, ... below the CPUs, and the CPUs themselves. */
export function threadCounts(cpus: number): number[] {
  const counts: number[] = [];
  for (let t = 1; t < cpus; t *= 2) counts.push(t);
  return [...counts, cpus];
}

/**
 * Over the splits measured, the fewest threads within MEANINGFUL_GAIN of the fastest measured
 * (count, split) that fits the CPUs; of the splits at that count, the faster.
 */
export function fastestLayout(bySplit: Partial<Record<ComputeSplit, Record<string, number>>>, cpus: number):
  { threads: number; split: ComputeSplit } | undefined {
  const candidates = COMPUTE_SPLITS.flatMap((split) => Object.entries(bySplit[split] ?? {})
    .map(([t, speed]) => ({ threads: Number(t), split, speed }))
    .filter((c) => c.threads >= 1 && c.threads <= cpus && c.speed > 0));
  if (!candidates.length) return undefined;
  const best = Math.max(...candidates.map((c) => c.speed));
  const near = candidates.filter((c) => c.speed * MEANINGFUL_GAIN >= best);
  const fewest = Math.min(...near.map((c) => c.threads));
  const pick = near.filter((c) => c.threads === fewest).sort((a, b) => b.speed - a.speed)[0];
  // One thread is one thread whichever way it would split: say 'batch' (no kernel threads started).
  return { threads: pick.threads, split: pick.threads === 1 ? 'batch' : pick.split };
}

const SPLIT_WORDS: Record<ComputeSplit, string> = { batch: 'data parallel', ops: 'split operations' };

/**
 * Compute threads for a backend and model: 1 where the backend parallelises itself; the
 * fastest count measured on this machine; else one per allotted CPU, at most
 * MAX_DEFAULT_THREADS (1 for a model whose step is too short to share out: `oneThread`).
 */
export function chooseComputeThreads(backend: string, env: NodeJS.ProcessEnv = process.env, model?: string, batchSize = 64,
  split?: ComputeSplit): ThreadChoice {
  if (SELF_PARALLEL[backend]) return { threads: 1, split: 'batch', why: SELF_PARALLEL[backend] };
  const allotment = cpuAllotment(env);
  if (model) {
    const file = threadSweepsFile(env);
    const records = readThreadSweeps(file).filter((r) => r.model === model);
    // The question (package.json, the engine's hash) only where there is a sweep to hold it against.
    const question = records.length ? sweepQuestion(backend, batchSize) : undefined;
    const record = question && records.find((r) => sameQuestion(r, question));
    const measured: Partial<Record<ComputeSplit, Record<string, number>>> = record
      ? { batch: record.samples_per_s, ...(record.ops_samples_per_s ? { ops: record.ops_samples_per_s } : {}) } : {};
    if (split) for (const other of COMPUTE_SPLITS) if (other !== split) delete measured[other];
    const layout = record && fastestLayout(measured, allotment.cpus);
    if (record && layout) {
      const speeds = Object.entries(measured).map(([s, bySplit]) => `${SPLIT_WORDS[s as ComputeSplit]}: ` +
        Object.entries(bySplit).map(([t, v]) => `${t}: ${Math.round(v).toLocaleString('en-US')}`).join(', ')).join('; ');
      return { threads: layout.threads, split: split ?? layout.split,
        why: `the fastest for ${model} on ${allotment.cpus} CPUs (${allotment.source}) in this machine's thread sweep of ` +
        `${record.measured_at.slice(0, 10)} (samples/s by threads, ${speeds}; ${file})` };
    }
    if (MODELS[model]?.oneThread) return { threads: 1, split: split ?? 'batch', why: `${model}'s step is too short to share out` };
  }
  const threads = Math.max(1, Math.min(allotment.cpus, MAX_DEFAULT_THREADS));
  return { threads, split: split ?? 'batch',
    why: `one per CPU (${allotment.source}), at most ${MAX_DEFAULT_THREADS}; not measured here (npm run bench -- --threads-sweep)` };
}

/**
 * Compute threads for a loader study (runs at several worker counts): the model's default, but
 * no more than the CPUs the largest run's loader workers leave (compute threads + workers within
 * the allotment), and the same for every run so that they differ in their workers alone.
 */
export function studyComputeThreads(backend: string, env: NodeJS.ProcessEnv, model: string, workers: number[], batchSize = 64,
  split?: ComputeSplit): ThreadChoice {
  const own = chooseComputeThreads(backend, env, model, batchSize, split);
  const most = Math.max(0, ...workers);
  const allotment = cpuAllotment(env);
  const left = Math.max(1, allotment.cpus - most);
  if (own.threads <= left) return { threads: own.threads, split: own.split, why: `${own.why}; with ${most} loader worker${most === 1 ? '' : 's'} at most, ${own.threads + most} of ${allotment.cpus} CPUs` };
  return { threads: left, split: left === 1 ? 'batch' : own.split, why: `${allotment.cpus} CPUs (${allotment.source}) less the ${most} loader workers of the largest run` +
    (left === 1 && allotment.cpus - most < 1 ? ', at least 1: the workers already outnumber the CPUs' : '') };
}
