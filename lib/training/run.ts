/**
 * A training run, in the reference script's order (pytorch/examples' `main()`): set up,
 * then per epoch train, test, step the learning rate and save; with the run folder's
 * metrics and checkpoints, resume, stop signals and, on request, the line profiler.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { BackendInfo, initBackend } from '../engine/backend';
import { splitRows } from '../engine/allreduce';
import { Dataset, loadData } from '../data/dataset';
import { DataLoader } from '../data/loader';
import { createModel, seedDropout } from '../models';
import { formatSummary, summarize } from '../models/summary';
import { isProfiling, ProfileSession, recordSpan } from '../profiling';
import { EpochMetrics, identityDifferences, RunConfig, RunFolder } from '../runs/run-folder';
import { UserError } from '../util/errors';
import { writeError } from '../util/files';
import { checkFolder, someNames } from '../util/path-checks';
import { machineInfo, tfjsVersions } from '../util/machine';
import { runsRoot, timestampName } from '../util/paths';
import { rng } from '../util/random';
import { Checkpoint, checkFits, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { DataParallel, checkComputeThreads } from './data-parallel';
import { chooseComputeThreads, type ThreadChoice } from './thread-choice';
import { DivergedError, trainEpoch } from './epoch';
import { testLogLine, TestResult } from './evaluate';
import { createOptimizer, learningRateAt, setLearningRate } from './optim';
import { checkWorkersAgainstSlurm, optionWarnings, TrainOptions } from './options';
import { Progress, createProgress } from './progress';

export interface RunResult {
  outDir: string;
  metrics: EpochMetrics[];
  backend: string;
  /** Set when a signal (Slurm's time-limit warning, SIGTERM) stopped the run early. */
  interrupted?: { signal: string; epoch: number };
}

/** The exit code of a run stopped because its loss became NaN or infinite. */
export const EXIT_DIVERGED = 4;

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
  if (!given.resume) checkWorkersAgainstSlurm(options.workers, options.allowOversubscribe);
  const folder = given.resume ? new RunFolder(given.resume) : newRunFolder(options.out);
  if (given.resume) {
    // A finished run asked for no more epochs: nothing to train, and nothing in its folder is rewritten.
    const metrics = folder.readMetrics();
    if (metrics.length >= options.epochs) {
      progress.line(`${folder.dir} has all ${options.epochs} epochs already (${folder.describe()}): nothing to train. ` +
        `Raise --epochs (e.g. --epochs ${options.epochs + 1}) to continue it.`);
      return { outDir: folder.dir, metrics, backend: folder.readConfig().backend };
    }
  }
  const lock = folder.lock();
  try {
    if (!given.resume) refuseExistingRun(folder, options.out);
    return await trainIn(folder, options, progress, stop, stoppedBy);
  } finally {
    lock.release();
  }
}

async function trainIn(folder: RunFolder, options: TrainOptions, progress: Progress, stop: AbortSignal, stoppedBy: () => string): Promise<RunResult> {
  const backend = await initBackend(options.backend);
  progress.line(backend.line);
  for (const warning of optionWarnings(options)) progress.line(warning);
  const data = await loadData(options, (s) => progress.line(s));
  progress.line(`Data: ${data.note}`);
  if (options.batchSize > data.train.count) {
    progress.line(`Note: --batch-size ${options.batchSize} is larger than the ${data.train.count} training samples: each epoch is one batch of ${data.train.count}`);
  }
  const model = createModel(options.model, options.seed);
  progress.line(formatSummary(summarize(model)));
  const optimizer = createOptimizer(options.optimizer, options.lr, options.momentum);
  const choice: ThreadChoice = options.computeThreads !== undefined
    ? { threads: options.computeThreads, split: options.computeThreads > 1 ? options.computeSplit ?? 'batch' : 'batch', why: 'asked for' }
    : chooseComputeThreads(backend.name, process.env, options.model, options.batchSize, options.computeSplit);
  const { threads, split } = choice;
  checkComputeThreads(threads, backend.name, split);
  const session = options.profile || isProfiling() ? new ProfileSession() : undefined;
  let start: Start;
  try {
    start = options.resume ? await restore(folder, options, model, optimizer, session, progress) : fresh(folder, progress);
  } catch (err) {
    session?.close(); // recording back as it was: a notebook kernel that goes on is not left profiling
    throw err;
  }
  folder.writeConfig(runConfig(options, folder.dir, backend, choice, data));
  const loader = new DataLoader(data.train, {
    batchSize: options.batchSize, shuffle: true, seed: options.seed, numWorkers: options.workers, signal: stop,
  });
  progress.line(loaderLine(options.workers));
  const parallel = await DataParallel.start(model, {
    threads, split, model: options.model, seed: options.seed, backend: backend.name,
    optimizer: { name: options.optimizer, lr: options.lr, momentum: options.momentum },
  });
  progress.line(computeLine(choice, Math.min(options.batchSize, data.train.count)));
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
      const trainLoss = await trainEpoch({ model, optimizer, loader, logInterval: options.logInterval, progress, onBatchLoss, parallel }, epoch)
        .catch((err: unknown) => {
          if (!(err instanceof DivergedError)) throw err;
          folder.appendDivergence({ epoch, lr, diverged: { batch: err.batch, loss: String(err.loss) } });
          const kept = epoch === 1 ? 'no epoch was finished' : `${folder.dir} keeps the ${epoch - 1} epoch${epoch === 2 ? '' : 's'} before`;
          throw new UserError(`${err.message} (lr ${lr}): training cannot go on. Lower --lr (or choose another --optimizer) and ` +
            `start a new run; ${kept} (the divergence is recorded in metrics.jsonl)`, EXIT_DIVERGED);
        });
      const t1 = performance.now();
      if (stop.aborted) {
        interrupted = { signal: stoppedBy(), epoch };
        progress.line(stopMessage(interrupted, folder.dir));
        folder.markInterrupted(interrupted.signal, epoch);
        break;
      }
      const test = await parallel.evaluate(model, data.test, options.testBatchSize);
      const t2 = performance.now();
      if (session) {
        // The epoch and its test pass on the main thread's timeline, and every other thread's record, in this epoch's part.
        recordSpan(`epoch ${epoch}`, performance.timeOrigin + t0, performance.timeOrigin + t1);
        recordSpan('test', performance.timeOrigin + t1, performance.timeOrigin + t2);
        await parallel.collect();
        session.end({ workers: options.workers, epoch });
      }
      progress.line(testLogLine(test));
      const m = epochMetrics(epoch, lr, trainLoss, test, (t1 - t0) / 1000, (t2 - t1) / 1000, data, backend, options.workers, threads);
      metrics.push(m);
      const improved = test.accuracy > best;
      best = Math.max(best, test.accuracy);
      // The checkpoint first: metrics.jsonl never records an epoch whose checkpoint was not written.
      const meta = { epoch, testAccuracy: test.accuracy, bestAccuracy: best, config: { ...options, out: folder.dir, given: undefined }, metrics };
      await saveOrExplain(folder, 'lastCheckpoint', model, optimizer, meta);
      if (improved) await saveOrExplain(folder, 'bestCheckpoint', model, optimizer, meta);
      folder.appendMetrics(m);
      // The profile so far, every epoch: what an interrupted run measured is kept.
      if (session) {
        folder.writeLineProfile({
          text: session.text(), rows: session.rows(), waits: session.waits(), parts: session.storeParts(),
          trace: session.trace(`train ${options.model}, ${options.workers} loader worker${options.workers === 1 ? '' : 's'}, ${threads} compute thread${threads === 1 ? '' : 's'}`,
            { run: folder.dir, model: options.model, workers: options.workers, compute_threads: threads, backend: backend.name }),
          threads: session.threadSummary(),
        });
      }
    }
  } finally {
    await parallel.close();
    session?.close();
  }
  if (session?.partCount) {
    if (progress.lineProfile) progress.lineProfile(session);
    else progress.line(`\n${session.text()}`);
  }
  if (!interrupted) folder.clearInterrupted();
  progress.line(`Run folder: ${folder.dir}`);
  optimizer.dispose();
  model.dispose();
  return { outDir: folder.dir, metrics, backend: backend.name, interrupted };
}

/** Saves a checkpoint; a write the file system refuses says what stays intact and how to go on. */
async function saveOrExplain(folder: RunFolder, which: 'lastCheckpoint' | 'bestCheckpoint', model: tf.LayersModel, optimizer: tf.Optimizer,
  meta: Parameters<typeof saveCheckpoint>[3]): Promise<void> {
  try {
    await saveCheckpoint(folder.file(which), model, optimizer, meta);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    const kept = which === 'bestCheckpoint' ? `last.ckpt holds epoch ${meta.epoch}; best.ckpt is still the previous best`
      : folder.has('lastCheckpoint') ? `the previous last.ckpt (epoch ${meta.epoch - 1}) is intact and metrics.jsonl ends there` : 'no epoch was saved yet';
    throw new UserError(`${err.message}. Epoch ${meta.epoch} was not saved; ${kept}. Free space (or fix the permission), ` +
      `then continue with --resume ${folder.dir}`);
  }
}

/**
 * A resumed run's options: the run's own (compute threads and backend as they ran); an
 * option given with another value is refused before any work, one line per difference.
 * --epochs may be raised, and the log interval changed.
 */
function resumedOptions(given: TrainOptions): TrainOptions {
  const folder = new RunFolder(checkFolder('--resume', given.resume!, { write: true }));
  if (given.out && path.resolve(given.out) !== folder.dir) {
    throw new UserError(`--out ${given.out} and --resume ${given.resume} name different folders: a resumed run continues in its own folder`);
  }
  const config = folder.readConfig();
  const saved = config.options as unknown as TrainOptions;
  const isGiven = (option: string) => !given.given || given.given.includes(option);
  const allowOversubscribe = given.allowOversubscribe || saved.allowOversubscribe;
  // More workers than Slurm's CPUs is refused first, whatever the run had.
  checkWorkersAgainstSlurm(isGiven('workers') ? given.workers : saved.workers, allowOversubscribe);
  const differences = identityDifferences(config, given as unknown as Record<string, unknown>, isGiven);
  if (differences.length) {
    const show = (v: unknown) => (v === null || v === undefined ? 'not set' : String(v));
    throw new UserError(`--resume ${given.resume}: the run was made with other settings than asked for:\n` +
      differences.map((d) => `  ${d.flag}: the run has ${show(d.run)}, asked for ${show(d.asked)}`).join('\n') +
      `\nDrop ${differences.length === 1 ? 'that option' : 'those options'} to continue the run as it was, or start a new run with another --out.`);
  }
  // The planned epochs may be raised, or lowered to no fewer than those done: a run's records never outnumber its plan.
  const done = folder.readMetrics().length;
  if (isGiven('epochs') && given.epochs < done) {
    throw new UserError(`--resume ${given.resume} --epochs ${given.epochs}: the run has done ${done} epoch${done === 1 ? '' : 's'} already ` +
      `(${folder.describe()}); --epochs can be raised (e.g. --epochs ${Math.max(done, saved.epochs) + 1}), never set below the epochs done`);
  }
  return {
    ...saved, computeThreads: config.compute_threads, computeSplit: config.compute_split ?? 'batch', backend: config.backend as TrainOptions['backend'],
    epochs: isGiven('epochs') ? given.epochs : saved.epochs, logInterval: isGiven('logInterval') ? given.logInterval : saved.logInterval,
    allowOversubscribe, resume: folder.dir, out: folder.dir, given: undefined,
  };
}

/** The folder of a new run: --out, or a new runs/<timestamp> (made exclusively: two runs started in the same second get two). */
function newRunFolder(out: string | undefined): RunFolder {
  if (out) {
    const folder = new RunFolder(checkFolder('--out', out, { write: true, create: true }));
    const foreign = folder.foreignContents();
    if (foreign.length) {
      throw new UserError(`--out ${out} holds files that are not a run of this lab (${someNames(foreign)}): nothing was written; ` +
        'choose an empty or new folder for the run');
    }
    return folder;
  }
  const base = path.join(runsRoot(), timestampName());
  try {
    fs.mkdirSync(runsRoot(), { recursive: true });
  } catch (err) {
    throw writeError(err, runsRoot());
  }
  for (let n = 1; ; n++) {
    const dir = n === 1 ? base : `${base}-${n}`;
    try {
      fs.mkdirSync(dir);
      return new RunFolder(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError(err, path.resolve(dir));
    }
  }
}

/** A new run never replaces one that has finished an epoch (one stopped during its first epoch may start over). */
function refuseExistingRun(folder: RunFolder, out: string | undefined): void {
  if (!folder.isRun || !folder.hasProgress) return;
  throw new UserError(`--out ${out ?? folder.dir} holds a run already (${folder.describe()}): continue it with --resume ${out ?? folder.dir}, ` +
    'or choose another --out');
}

interface Start { epoch: number; best: number; metrics: EpochMetrics[] }

function fresh(folder: RunFolder, progress: Progress): Start {
  folder.startFresh();
  progress.line(`Starting a new run in ${folder.dir}`);
  return { epoch: 1, best: 0, metrics: [] };
}

/**
 * Weights, optimizer state and records of the last checkpoint (with the line profile
 * measured up to it); the run goes on after its epoch.
 */
async function restore(folder: RunFolder, options: TrainOptions, model: tf.LayersModel, optimizer: tf.Optimizer,
  session: ProfileSession | undefined, progress: Progress): Promise<Start> {
  const file = folder.file('lastCheckpoint');
  if (!fs.existsSync(file)) {
    throw new UserError(`--resume ${folder.dir}: no last.ckpt there yet (the run stopped before finishing its first epoch): ` +
      'start it again without --resume (the same --out is fine)');
  }
  let ckpt: Checkpoint;
  try {
    ckpt = loadCheckpoint(file);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    throw new UserError(`${err.message}. ${bestCheckpointAdvice(folder)}`);
  }
  checkFits(ckpt, file, options.model, model);
  model.setWeights(ckpt.weights);
  // Creates the optimizer's slots in the order the gradients use, then overwrites them.
  await optimizer.setWeights(ckpt.optimizer);
  tf.dispose(ckpt.weights);
  session?.restoreParts(folder.readProfileParts(ckpt.epoch));
  progress.line(`Resuming ${folder.dir} from epoch ${ckpt.epoch + 1} (last.ckpt holds epoch ${ckpt.epoch})`);
  return { epoch: ckpt.epoch + 1, best: ckpt.bestAccuracy, metrics: folder.keepThrough(ckpt.epoch, ckpt.metrics) };
}

/** What to do when last.ckpt is damaged: best.ckpt, if it is intact, or a new run. */
function bestCheckpointAdvice(folder: RunFolder): string {
  const best = folder.file('bestCheckpoint');
  try {
    const ckpt = loadCheckpoint(best);
    tf.dispose([...ckpt.weights, ...ckpt.optimizer.map((o) => o.tensor)]);
    return `best.ckpt (epoch ${ckpt.epoch}, ${ckpt.testAccuracy.toFixed(2)}%) is intact: to continue from it, ` +
      `copy it over last.ckpt (cp ${best} ${folder.file('lastCheckpoint')}) and resume again; or start a new run with another --out`;
  } catch {
    return 'No intact best.ckpt either: start a new run with another --out';
  }
}

function runConfig(options: TrainOptions, out: string, backend: BackendInfo, compute: ThreadChoice, data: Dataset): RunConfig {
  const { given: _, ...recorded } = options;
  return {
    options: { ...recorded, out }, started_at: new Date().toISOString(), backend: backend.name, engine: backend.engine, backend_line: backend.line,
    ...(backend.adapter ? { adapter: backend.adapter } : {}), compute_threads: compute.threads, compute_split: compute.split, machine: machineInfo(), versions: tfjsVersions(),
    data: { name: data.name, train: data.train.count, test: data.test.count, note: data.note, fingerprint: data.fingerprint },
  };
}

function epochMetrics(epoch: number, lr: number, trainLoss: number, test: TestResult, trainSeconds: number, testSeconds: number,
  data: Dataset, backend: BackendInfo, workers: number, threads: number): EpochMetrics {
  return {
    epoch, lr, train_loss: trainLoss, test_loss: test.loss, test_accuracy: test.accuracy,
    test_correct: test.correct, test_total: test.total, train_seconds: trainSeconds, test_seconds: testSeconds,
    samples_per_second: data.train.count / trainSeconds, backend: backend.name, workers,
    compute_threads: threads, num_tensors: tf.memory().numTensors, finished_at: new Date().toISOString(),
  };
}

function loaderLine(workers: number): string {
  return `DataLoader: ${workers} worker${workers === 1 ? '' : 's'}` +
    (workers === 0 ? ' (batches built in the main thread)' : ' (worker threads, data set in shared memory)');
}

/** The run's line about how each step is computed. */
function computeLine({ threads, split, why }: ThreadChoice, batchSize: number): string {
  if (threads === 1) return `Compute: 1 thread (${why}; --compute-threads to change)`;
  if (split === 'ops') {
    return `Compute: ${threads} threads, split operations: each convolution and matrix product of the step is split across them ` +
      `(${why}; --compute-threads and --compute-split to change)`;
  }
  const sizes = splitRows(batchSize, threads).map(([, n]) => n);
  return `Compute: ${threads} threads, data parallel: each batch of ${batchSize} is split ${sizes.join(' + ')}, ` +
    `gradients summed in shared memory (${why}; --compute-threads and --compute-split to change)`;
}

function stopMessage(stopped: { signal: string; epoch: number }, dir: string): string {
  return stopped.epoch > 1
    ? `\nStopped by ${stopped.signal} during epoch ${stopped.epoch}: last.ckpt holds epoch ${stopped.epoch - 1}. ` +
      `Continue with --resume ${dir} (the epoch is repeated from its start, so results are unchanged).`
    : `\nStopped by ${stopped.signal} during epoch 1, before any checkpoint: run again to start over.`;
}

