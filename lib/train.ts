/**
 * The training loop, in the reference script's order: train one epoch, test, step the
 * learning rate; with metrics, checkpoints and resume.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BackendRequest, initBackend, tfjsVersions } from './backend';
import { machineInfo, slurmCpus } from './machine';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import { writeFileAtomic } from './data/idx';
import { downloadMnist } from './data/download';
import { Dataset, Split, limitTrain, loadEmbedded, loadFolder } from './data/mnist';
import { UserError } from './errors';
import { readJsonLines } from './jsonl';
import { nllLoss } from './loss';
import { splitRows } from './allreduce';
import { DataParallel, checkComputeThreads, defaultComputeThreads } from './data-parallel';
import { DataLoader } from './loader';
import { createModel, seedDropout } from './models';
import { OptimizerName, createOptimizer, learningRateAt, setLearningRate } from './optim';
import { FunctionStats, formatText, isProfiling, mergeStats, profile, reset as resetProfile, setProfiling, snapshot, toRows } from './profiling';
import { dataRoot } from './paths';
import { Progress, createProgress } from './progress';
import { rng } from './random';
import { formatSummary, summarize } from './summary';

export interface TrainOptions {
  model: string;
  /** 'embedded' or a folder of IDX files. */
  data: string;
  download: boolean;
  epochs: number;
  batchSize: number;
  testBatchSize: number;
  lr: number;
  gamma: number;
  optimizer: OptimizerName;
  momentum: number;
  seed: number;
  logInterval: number;
  limit?: number;
  /** DataLoader worker threads for training (0 = main thread). */
  workers: number;
  /**
   * Threads computing each step, data parallel (lib/data-parallel.ts); default: one per
   * available CPU (at most 4) on wasm and cpu, 1 on tensorflow.
   */
  computeThreads?: number;
  backend: BackendRequest;
  /** Output folder; default runs/<timestamp>. */
  out?: string;
  /** A run folder to continue from its last checkpoint. */
  resume?: string;
  /** Line-profile the training loop (also on with LINE_PROFILE=1). */
  profile?: boolean;
  /** Allow more DataLoader workers than the CPUs Slurm allocated (SLURM_CPUS_PER_TASK). */
  allowOversubscribe?: boolean;
}

export const DEFAULTS: TrainOptions = {
  model: 'net', data: 'embedded', download: false, epochs: 5, batchSize: 64, testBatchSize: 1000,
  lr: 1.0, gamma: 0.7, optimizer: 'adadelta', momentum: 0, seed: 1, logInterval: 10, workers: 1, backend: 'auto',
};

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

export interface RunResult {
  outDir: string;
  metrics: EpochMetrics[];
  backend: string;
  /** Set when a signal (Slurm's time-limit warning, SIGTERM) stopped the run early. */
  interrupted?: { signal: string; epoch: number };
}

/**
 * Refuses more workers than the CPUs Slurm gave the job, so that the batch script and
 * the code cannot disagree silently.
 */
export function checkWorkersAgainstSlurm(workers: number, allowOversubscribe = false, env = process.env): void {
  const cpus = slurmCpus(env);
  if (cpus === undefined || workers <= cpus || allowOversubscribe) return;
  throw new UserError(`--workers ${workers} is more than the ${cpus} CPU${cpus === 1 ? '' : 's'} Slurm allocated to this job ` +
    `(SLURM_CPUS_PER_TASK=${cpus}). Ask for them (sbatch --cpus-per-task=${workers}), use --workers ${cpus}, ` +
    'or pass --allow-oversubscribe to run anyway.');
}

/** Signals that stop training cleanly: Slurm's warning before the time limit, and termination. */
const STOP_SIGNALS = ['SIGUSR1', 'SIGTERM', 'SIGINT'] as const;

export { nllLoss };

/** Loads the data set named by the options (embedded, a folder, or downloaded). */
export async function loadData(options: Pick<TrainOptions, 'data' | 'download' | 'limit'>, log: (s: string) => void): Promise<Dataset> {
  let data: Dataset;
  if (options.download) {
    const dir = await downloadMnist({ dir: path.join(dataRoot(), 'mnist'), log });
    data = loadFolder(dir);
  } else if (options.data === 'embedded') {
    data = loadEmbedded();
  } else {
    data = loadFolder(options.data);
  }
  return limitTrain(data, options.limit);
}

export interface EpochContext {
  model: tf.LayersModel;
  optimizer: tf.Optimizer;
  loader: DataLoader;
  logInterval: number;
  progress: Progress;
  /** Compute threads sharing each step (default: this thread alone). */
  parallel?: DataParallel;
  /** Called with each logged batch loss (per-batch metrics of the run folder). */
  onBatchLoss?: (epoch: number, batchIndex: number, loss: number) => void;
}

/** Prints the reference's log line for a batch and hands its loss to the run's per-batch metrics. */
function logBatch(ctx: EpochContext, epoch: number, batchIndex: number, loss: number): void {
  ctx.progress.line(trainLogLine(epoch, batchIndex, ctx.loader, loss));
  ctx.onBatchLoss?.(epoch, batchIndex, loss);
}

/**
 * One pass over the training data; returns the mean training loss. One step per line, in
 * the reference's order, so that its line-profiler table compares line for line with the
 * PyTorch exercise's (`for batch_idx, (data, target) in enumerate(train_loader)` ...).
 */
export const trainEpoch = profile(async function trainEpoch(ctx: EpochContext, epoch: number): Promise<number> {
  const { model, optimizer, loader, progress } = ctx;
  const parallel = ctx.parallel ?? DataParallel.single();
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const started = performance.now();
  let seen = 0;
  let lastLoss = NaN; // for the progress bar, read at log intervals
  let lossSum = tf.scalar(0);
  progress.start(`Epoch ${epoch}`, loader.split.count);
  for await (const batch of loader) {
    const part = parallel.scatter(batch); // the other parts go to the other compute threads
    const data = tf.tensor4d(part.images, [part.size, 28, 28, 1]);
    const target = tf.tensor1d(part.labels, 'int32');
    const { value, grads: partGrads } = tf.variableGrads(() => {
      const output = model.apply(data, { training: true }) as tf.Tensor;
      return nllLoss(output, target, part.weight);
    }, vars);
    const { loss, grads } = await parallel.allReduce(value, partGrads); // summed over the threads
    optimizer.applyGradients(grads);
    lossSum = accumulate(lossSum, loss, batch.size);
    seen += batch.size;
    if (batch.index % ctx.logInterval === 0) {
      lastLoss = (await loss.data())[0];
      logBatch(ctx, epoch, batch.index, lastLoss);
    }
    progress.update(seen, lastLoss, seen / ((performance.now() - started) / 1000));
    tf.dispose([data, target, loss, ...Object.values(grads)]);
  }
  progress.stop();
  const mean = (await lossSum.data())[0] / seen;
  lossSum.dispose();
  return mean;
});

/** sum + loss · n, disposing the old sum (keeps the epoch's loss on the device). */
function accumulate(sum: tf.Scalar, loss: tf.Scalar, n: number): tf.Scalar {
  const next = tf.tidy(() => sum.add<tf.Scalar>(loss.mul(n)));
  sum.dispose();
  return next;
}

/** The run's line about how each step is computed. */
function computeLine(threads: number, batchSize: number): string {
  if (threads === 1) return 'Compute: 1 thread (--compute-threads to change)';
  const sizes = splitRows(batchSize, threads).map(([, n]) => n);
  return `Compute: ${threads} threads, data parallel: each batch of ${batchSize} is split ${sizes.join(' + ')}, ` +
    'gradients summed in shared memory (--compute-threads to change)';
}

/** `Train Epoch: 1 [640/8000 (8%)]\tLoss: 0.412345`, as the reference prints it. */
export function trainLogLine(epoch: number, batchIndex: number, loader: DataLoader, loss: number): string {
  return `Train Epoch: ${epoch} [${batchIndex * loader.batchSize}/${loader.split.count} ` +
    `(${((100 * batchIndex) / loader.length).toFixed(0)}%)]\tLoss: ${loss.toFixed(6)}`;
}

export interface TestResult { loss: number; correct: number; total: number; accuracy: number }

/** Average NLL and accuracy over a split, in batches of `batchSize` (no dropout). */
export async function evaluate(model: tf.LayersModel, split: Split, batchSize: number): Promise<TestResult> {
  const loader = new DataLoader(split, { batchSize });
  let lossSum = 0;
  let correct = 0;
  for await (const batch of loader) {
    const [l, c] = tf.tidy(() => {
      const data = tf.tensor4d(batch.images, [batch.size, 28, 28, 1]);
      const target = tf.tensor1d(batch.labels, 'int32');
      const out = model.apply(data, { training: false }) as tf.Tensor;
      return [nllLoss(out, target).mul(batch.size), out.argMax(1).equal(target).sum()];
    });
    lossSum += (await l.data())[0];
    correct += (await c.data())[0];
    tf.dispose([l, c]);
  }
  const total = split.count;
  return { loss: lossSum / total, correct, total, accuracy: (100 * correct) / total };
}

/**
 * line-profile.txt (line_profiler's text, all epochs of this process together),
 * line-profile.json (one row per line and epoch, with the worker count) and
 * loop-waits.json (every wait of a loop header, per epoch).
 */
function writeLineProfile(outDir: string, epochs: FunctionStats[][], firstEpoch: number, workers: number, progress: Progress): void {
  const text = formatText(mergeStats(epochs));
  writeFileAtomic(path.join(outDir, 'line-profile.txt'), text);
  const rows = epochs.flatMap((stats, i) => toRows(stats, { workers, epoch: firstEpoch + i }));
  writeFileAtomic(path.join(outDir, 'line-profile.json'), JSON.stringify(rows, null, 1) + '\n');
  // Each wait for the next batch (loop-header lines), per epoch: the report's distribution.
  const waits = epochs.flatMap((stats, i) => stats.flatMap((s) => [...s.samples].map(([line, seconds]) =>
    ({ workers, epoch: firstEpoch + i, function: s.meta.name, line, seconds }))));
  writeFileAtomic(path.join(outDir, 'loop-waits.json'), JSON.stringify(waits) + '\n');
  progress.line(`\n${text}`);
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:T]/g, '-').replace(/\..*/, '');
}

function readResumeConfig(dir: string): TrainOptions {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new UserError(`${dir}: not a run folder (no config.json) — --resume expects a folder written by train`);
  return JSON.parse(fs.readFileSync(file, 'utf8')).options as TrainOptions;
}

/** Keeps the lines of a metrics file up to `epoch` (a resumed run rewrites the later ones). */
function truncateMetrics(file: string, epoch: number): EpochMetrics[] {
  if (!fs.existsSync(file)) return [];
  const kept = readJsonLines<EpochMetrics>(file).filter((m) => m.epoch <= epoch);
  writeFileAtomic(file, kept.map((m) => JSON.stringify(m) + '\n').join(''));
  return kept;
}

/**
 * Trains a model as the reference script does; prints as it goes; writes the run folder.
 * A stop signal ends the epoch at the next batch; last.ckpt keeps the last full epoch, so a
 * resumed run repeats the interrupted epoch from the same state and ends with the same
 * result. The signal handlers are removed however the run ends (a throw included), so a
 * notebook kernel or test process gets its Ctrl-C back.
 */
export async function runTraining(given: TrainOptions, progress: Progress = createProgress()): Promise<RunResult> {
  const stop = new AbortController();
  let stoppedBy = '';
  const onSignal = (signal: NodeJS.Signals) => {
    stoppedBy ||= signal;
    stop.abort();
  };
  for (const sig of STOP_SIGNALS) process.on(sig, onSignal);
  try {
    return await train(given, progress, stop.signal, () => stoppedBy);
  } finally {
    for (const sig of STOP_SIGNALS) process.off(sig, onSignal);
  }
}

async function train(given: TrainOptions, progress: Progress, stop: AbortSignal, stoppedBy: () => string): Promise<RunResult> {
  let options = given;
  if (given.resume) {
    // The saved options decide the run; only the epoch count may be raised.
    options = { ...readResumeConfig(given.resume), resume: given.resume, out: given.resume, epochs: given.epochs };
  }
  checkWorkersAgainstSlurm(options.workers, options.allowOversubscribe);
  const backend = await initBackend(options.backend);
  progress.line(backend.line);
  const data = await loadData(options, (s) => progress.line(s));
  progress.line(`Data: ${data.note}`);

  const outDir = path.resolve(options.out ?? path.join('runs', timestamp()));
  fs.mkdirSync(outDir, { recursive: true });
  const model = createModel(options.model, options.seed);
  progress.line(formatSummary(summarize(model)));
  const optimizer = createOptimizer(options.optimizer, options.lr, options.momentum);
  const threads = options.computeThreads ?? defaultComputeThreads(backend.name);
  checkComputeThreads(threads, backend.name);
  const metricsFile = path.join(outDir, 'metrics.jsonl');
  const batchesFile = path.join(outDir, 'batches.jsonl');
  const onBatchLoss = (epoch: number, batch: number, loss: number) =>
    fs.appendFileSync(batchesFile, JSON.stringify({ epoch, batch, samples: batch * options.batchSize, loss }) + '\n');

  let startEpoch = 1;
  let best = 0;
  let metrics: EpochMetrics[] = [];
  if (options.resume) {
    const ckpt = loadCheckpoint(path.join(outDir, 'last.ckpt'));
    model.setWeights(ckpt.weights);
    // Creates the optimizer's slots in the order the gradients use, then overwrites them.
    await optimizer.setWeights(ckpt.optimizer);
    tf.dispose(ckpt.weights);
    startEpoch = ckpt.epoch + 1;
    best = ckpt.bestAccuracy;
    metrics = truncateMetrics(metricsFile, ckpt.epoch);
    truncateMetrics(batchesFile, ckpt.epoch);
    progress.line(`Resuming from ${path.join(outDir, 'last.ckpt')} after epoch ${ckpt.epoch}`);
  } else {
    fs.rmSync(metricsFile, { force: true });
    fs.rmSync(batchesFile, { force: true });
  }
  writeFileAtomic(path.join(outDir, 'config.json'), JSON.stringify({
    options: { ...options, out: outDir }, backend: backend.name, engine: backend.engine, backend_line: backend.line,
    compute_threads: threads,
    machine: machineInfo(), versions: tfjsVersions(),
    data: { name: data.name, train: data.train.count, test: data.test.count, note: data.note },
  }, null, 2) + '\n');

  if (options.profile) setProfiling(true);
  const profiling = isProfiling();
  const epochProfiles: FunctionStats[][] = [];
  const loader = new DataLoader(data.train, {
    batchSize: options.batchSize, shuffle: true, seed: options.seed, numWorkers: options.workers, signal: stop,
  });
  progress.line(`DataLoader: ${options.workers} worker${options.workers === 1 ? '' : 's'}` +
    (options.workers === 0 ? ' (batches built in the main thread)' : ' (worker threads, data set in shared memory)'));
  const parallel = await DataParallel.start(model, {
    threads, model: options.model, seed: options.seed, backend: backend.name,
    optimizer: { name: options.optimizer, lr: options.lr, momentum: options.momentum },
  });
  progress.line(computeLine(threads, options.batchSize));
  let interrupted: RunResult['interrupted'];
  try {
    for (let epoch = startEpoch; epoch <= options.epochs; epoch++) {
      const lr = learningRateAt(options.lr, options.gamma, epoch);
      setLearningRate(optimizer, lr);
      loader.setEpoch(epoch);
      seedDropout(model, rng(options.seed, 'dropout', epoch));
      await parallel.sync(model, optimizer, lr, options.seed, epoch);
      if (profiling) resetProfile();
      const t0 = performance.now();
      const trainLoss = await trainEpoch({ model, optimizer, loader, logInterval: options.logInterval, progress, onBatchLoss, parallel }, epoch);
      const t1 = performance.now();
      if (stop.aborted) {
        interrupted = { signal: stoppedBy(), epoch };
        progress.line(epoch > 1
          ? `\nStopped by ${interrupted.signal} during epoch ${epoch}: last.ckpt holds epoch ${epoch - 1}. ` +
            `Continue with --resume ${outDir} (the epoch is repeated from its start, so results are unchanged).`
          : `\nStopped by ${interrupted.signal} during epoch 1, before any checkpoint: run again to start over.`);
        writeFileAtomic(path.join(outDir, 'interrupted.json'), JSON.stringify({ ...interrupted, at: new Date().toISOString() }) + '\n');
        break;
      }
      if (profiling) epochProfiles.push(snapshot());
      const test = await evaluate(model, data.test, options.testBatchSize);
      const t2 = performance.now();
      progress.line(`\nTest set: Average loss: ${test.loss.toFixed(4)}, Accuracy: ${test.correct}/${test.total} ` +
        `(${test.accuracy.toFixed(2)}%)\n`);
      const m: EpochMetrics = {
        epoch, lr, train_loss: trainLoss, test_loss: test.loss, test_accuracy: test.accuracy,
        test_correct: test.correct, test_total: test.total,
        train_seconds: (t1 - t0) / 1000, test_seconds: (t2 - t1) / 1000,
        samples_per_second: data.train.count / ((t1 - t0) / 1000), backend: backend.name, workers: options.workers,
        compute_threads: threads, num_tensors: tf.memory().numTensors,
      };
      metrics.push(m);
      fs.appendFileSync(metricsFile, JSON.stringify(m) + '\n');
      const improved = test.accuracy > best;
      best = Math.max(best, test.accuracy);
      const meta = { epoch, testAccuracy: test.accuracy, bestAccuracy: best, config: { ...options, out: outDir } };
      await saveCheckpoint(path.join(outDir, 'last.ckpt'), model, optimizer, meta);
      if (improved) await saveCheckpoint(path.join(outDir, 'best.ckpt'), model, optimizer, meta);
    }
  } finally {
    await parallel.close();
  }
  if (profiling && epochProfiles.length) writeLineProfile(outDir, epochProfiles, startEpoch, options.workers, progress);
  if (!interrupted) fs.rmSync(path.join(outDir, 'interrupted.json'), { force: true });
  progress.line(`Run folder: ${outDir}`);
  optimizer.dispose();
  model.dispose();
  return { outDir, metrics, backend: backend.name, interrupted };
}
