/**
 * A training run, in the reference script's order (pytorch/examples' `main()`): set up,
 * then per epoch train, test, step the learning rate and save; with the run folder's
 * metrics and checkpoints, resume, stop signals and, on request, the line profiler.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BackendInfo, initBackend } from '../engine/backend';
import { splitRows } from '../engine/allreduce';
import { Dataset, loadData } from '../data/dataset';
import { DataLoader } from '../data/loader';
import { createModel, seedDropout } from '../models';
import { formatSummary, summarize } from '../models/summary';
import { isProfiling, ProfileSession } from '../profiling';
import { EpochMetrics, RunConfig, RunFolder } from '../runs/run-folder';
import { machineInfo, tfjsVersions } from '../util/machine';
import { rng } from '../util/random';
import { loadCheckpoint, saveCheckpoint } from './checkpoint';
import { DataParallel, checkComputeThreads, defaultComputeThreads } from './data-parallel';
import { trainEpoch } from './epoch';
import { evaluate, testLogLine, TestResult } from './evaluate';
import { createOptimizer, learningRateAt, setLearningRate } from './optim';
import { checkWorkersAgainstSlurm, TrainOptions } from './options';
import { Progress, createProgress } from './progress';

export interface RunResult {
  outDir: string;
  metrics: EpochMetrics[];
  backend: string;
  /** Set when a signal (Slurm's time-limit warning, SIGTERM) stopped the run early. */
  interrupted?: { signal: string; epoch: number };
}

/** Signals that stop training cleanly: Slurm's warning before the time limit, and termination. */
const STOP_SIGNALS = ['SIGUSR1', 'SIGTERM', 'SIGINT'] as const;

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
  const options = given.resume ? resumedOptions(given) : given;
  checkWorkersAgainstSlurm(options.workers, options.allowOversubscribe);
  const backend = await initBackend(options.backend);
  progress.line(backend.line);
  const data = await loadData(options, (s) => progress.line(s));
  progress.line(`Data: ${data.note}`);
  const folder = new RunFolder(options.out ?? path.join('runs', timestamp())).create();
  const model = createModel(options.model, options.seed);
  progress.line(formatSummary(summarize(model)));
  const optimizer = createOptimizer(options.optimizer, options.lr, options.momentum);
  const threads = options.computeThreads ?? defaultComputeThreads(backend.name);
  checkComputeThreads(threads, backend.name);
  const start = options.resume ? await restore(folder, model, optimizer, progress) : fresh(folder);
  folder.writeConfig(runConfig(options, folder.dir, backend, threads, data));
  const session = options.profile || isProfiling() ? new ProfileSession() : undefined;
  const loader = new DataLoader(data.train, {
    batchSize: options.batchSize, shuffle: true, seed: options.seed, numWorkers: options.workers, signal: stop,
  });
  progress.line(loaderLine(options.workers));
  const parallel = await DataParallel.start(model, {
    threads, model: options.model, seed: options.seed, backend: backend.name,
    optimizer: { name: options.optimizer, lr: options.lr, momentum: options.momentum },
  });
  progress.line(computeLine(threads, options.batchSize));
  const onBatchLoss = (epoch: number, batch: number, loss: number) =>
    folder.appendBatch({ epoch, batch, samples: batch * options.batchSize, loss });
  const { metrics } = start;
  let best = start.best;
  let interrupted: RunResult['interrupted'];
  try {
    for (let epoch = start.epoch; epoch <= options.epochs; epoch++) {
      const lr = learningRateAt(options.lr, options.gamma, epoch);
      setLearningRate(optimizer, lr);
      loader.setEpoch(epoch);
      seedDropout(model, rng(options.seed, 'dropout', epoch));
      await parallel.sync(model, optimizer, lr, options.seed, epoch);
      session?.begin();
      const t0 = performance.now();
      const trainLoss = await trainEpoch({ model, optimizer, loader, logInterval: options.logInterval, progress, onBatchLoss, parallel }, epoch);
      const t1 = performance.now();
      if (stop.aborted) {
        interrupted = { signal: stoppedBy(), epoch };
        progress.line(stopMessage(interrupted, folder.dir));
        folder.markInterrupted(interrupted.signal, epoch);
        break;
      }
      session?.end({ workers: options.workers, epoch });
      const test = await evaluate(model, data.test, options.testBatchSize);
      const t2 = performance.now();
      progress.line(testLogLine(test));
      const m = epochMetrics(epoch, lr, trainLoss, test, (t1 - t0) / 1000, (t2 - t1) / 1000, data, backend, options.workers, threads);
      metrics.push(m);
      folder.appendMetrics(m);
      const improved = test.accuracy > best;
      best = Math.max(best, test.accuracy);
      const meta = { epoch, testAccuracy: test.accuracy, bestAccuracy: best, config: { ...options, out: folder.dir } };
      await saveCheckpoint(folder.file('lastCheckpoint'), model, optimizer, meta);
      if (improved) await saveCheckpoint(folder.file('bestCheckpoint'), model, optimizer, meta);
    }
  } finally {
    await parallel.close();
    session?.close();
  }
  if (session?.partCount) {
    folder.writeLineProfile({ text: session.text(), rows: session.rows(), waits: session.waits() });
    progress.line(`\n${session.text()}`);
  }
  if (!interrupted) folder.clearInterrupted();
  progress.line(`Run folder: ${folder.dir}`);
  optimizer.dispose();
  model.dispose();
  return { outDir: folder.dir, metrics, backend: backend.name, interrupted };
}

/** A resumed run's options: the saved ones decide the run; only the epoch count may be raised. */
function resumedOptions(given: TrainOptions): TrainOptions {
  const saved = new RunFolder(given.resume!).readConfig().options as TrainOptions;
  return { ...saved, resume: given.resume, out: given.resume, epochs: given.epochs };
}

interface Start { epoch: number; best: number; metrics: EpochMetrics[] }

function fresh(folder: RunFolder): Start {
  folder.startFresh();
  return { epoch: 1, best: 0, metrics: [] };
}

/** Weights, optimizer state and records of the last checkpoint; the run goes on after its epoch. */
async function restore(folder: RunFolder, model: tf.LayersModel, optimizer: tf.Optimizer, progress: Progress): Promise<Start> {
  const ckpt = loadCheckpoint(folder.file('lastCheckpoint'));
  model.setWeights(ckpt.weights);
  // Creates the optimizer's slots in the order the gradients use, then overwrites them.
  await optimizer.setWeights(ckpt.optimizer);
  tf.dispose(ckpt.weights);
  progress.line(`Resuming from ${folder.file('lastCheckpoint')} after epoch ${ckpt.epoch}`);
  return { epoch: ckpt.epoch + 1, best: ckpt.bestAccuracy, metrics: folder.keepThrough(ckpt.epoch) };
}

function runConfig(options: TrainOptions, out: string, backend: BackendInfo, threads: number, data: Dataset): RunConfig {
  return {
    options: { ...options, out }, backend: backend.name, engine: backend.engine, backend_line: backend.line,
    compute_threads: threads, machine: machineInfo(), versions: tfjsVersions(),
    data: { name: data.name, train: data.train.count, test: data.test.count, note: data.note },
  };
}

function epochMetrics(epoch: number, lr: number, trainLoss: number, test: TestResult, trainSeconds: number, testSeconds: number,
  data: Dataset, backend: BackendInfo, workers: number, threads: number): EpochMetrics {
  return {
    epoch, lr, train_loss: trainLoss, test_loss: test.loss, test_accuracy: test.accuracy,
    test_correct: test.correct, test_total: test.total, train_seconds: trainSeconds, test_seconds: testSeconds,
    samples_per_second: data.train.count / trainSeconds, backend: backend.name, workers,
    compute_threads: threads, num_tensors: tf.memory().numTensors,
  };
}

function loaderLine(workers: number): string {
  return `DataLoader: ${workers} worker${workers === 1 ? '' : 's'}` +
    (workers === 0 ? ' (batches built in the main thread)' : ' (worker threads, data set in shared memory)');
}

/** The run's line about how each step is computed. */
function computeLine(threads: number, batchSize: number): string {
  if (threads === 1) return 'Compute: 1 thread (--compute-threads to change)';
  const sizes = splitRows(batchSize, threads).map(([, n]) => n);
  return `Compute: ${threads} threads, data parallel: each batch of ${batchSize} is split ${sizes.join(' + ')}, ` +
    'gradients summed in shared memory (--compute-threads to change)';
}

function stopMessage(stopped: { signal: string; epoch: number }, dir: string): string {
  return stopped.epoch > 1
    ? `\nStopped by ${stopped.signal} during epoch ${stopped.epoch}: last.ckpt holds epoch ${stopped.epoch - 1}. ` +
      `Continue with --resume ${dir} (the epoch is repeated from its start, so results are unchanged).`
    : `\nStopped by ${stopped.signal} during epoch 1, before any checkpoint: run again to start over.`;
}

function timestamp(): string {
  return new Date().toISOString().replace(/[:T]/g, '-').replace(/\..*/, '');
}
