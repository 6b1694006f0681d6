/** The training options (`npm run train`'s flags), their defaults, and the checks made before a run starts. */
import os from 'node:os';
import type { BackendRequest } from '../engine/backend';
import { UserError } from '../util/errors';
import { slurmCpus } from '../util/machine';
import type { OptimizerName } from './optim';
import type { ComputeSplit } from './thread-choice';

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
   * Threads computing each step, data parallel (training/data-parallel.ts); default: one per
   * available CPU (at most 4) on wasm and cpu, 1 on tensorflow.
   */
  computeThreads?: number;
  /** How the compute threads share a step (thread-choice.ts's ComputeSplit); default: the thread sweep's fastest, else 'batch'. */
  computeSplit?: ComputeSplit;
  backend: BackendRequest;
  /** Output folder; default runs/<timestamp>. */
  out?: string;
  /** A run folder to continue from its last checkpoint. */
  resume?: string;
  /** Line-profile the training loop (also on with LINE_PROFILE=1). */
  profile?: boolean;
  /** Allow more DataLoader workers than the CPUs Slurm allocated (SLURM_CPUS_PER_TASK). */
  allowOversubscribe?: boolean;
  /**
   * The options set explicitly (e.g. on the command line); with --resume only these are held
   * against the run's. Absent: every option counts as set.
   */
  given?: string[];
}

export const DEFAULTS: TrainOptions = {
  model: 'net', data: 'embedded', download: false, epochs: 5, batchSize: 64, testBatchSize: 1000,
  lr: 1.0, gamma: 0.7, optimizer: 'adadelta', momentum: 0, seed: 1, logInterval: 10, workers: 1, backend: 'auto',
};

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

/**
 * One warning line per option that would otherwise be ignored or misleading without a word: an
 * option the chosen optimizer does not use, more loader workers than this machine's CPUs (inside
 * a Slurm job that is refused instead, by checkWorkersAgainstSlurm).
 */
export function optionWarnings(o: Pick<TrainOptions, 'optimizer' | 'momentum' | 'workers'>, env = process.env, cpus = os.availableParallelism()): string[] {
  const warnings: string[] = [];
  if (o.momentum > 0 && o.optimizer !== 'sgd') {
    warnings.push(`Warning: --momentum ${o.momentum} is not used by --optimizer ${o.optimizer} (only sgd takes a momentum): ignored`);
  }
  if (slurmCpus(env) === undefined && o.workers > cpus) {
    warnings.push(`Warning: --workers ${o.workers} is more than the ${cpus} CPU${cpus === 1 ? '' : 's'} this process can use: ` +
      'the loader workers share them with each other and with the compute threads, so a worker study measures that contention');
  }
  return warnings;
}
