/**
 * The `train` command's flags (pytorch/examples' mnist/main.py's, and this lab's): one definition
 * for bin/train.ts and for the worker study, which must read the same arguments it passes on.
 */
import { Command, CommanderError, Option } from 'commander';
import { BACKEND_REQUESTS, BackendRequest } from '../engine/backend';
import { MODEL_NAMES } from '../models';
import { command, fraction, nonNegativeInt, positiveInt, positiveNumber } from '../util/cli-options';
import { UserError } from '../util/errors';
import { OPTIMIZERS, OptimizerName } from './optim';
import { DEFAULTS, TrainOptions } from './options';
import { COMPUTE_SPLITS, type ComputeSplit } from './thread-choice';

/** The train command, its options, help and examples. */
export function trainCommand(): Command {
  return command('train')
  .description('Train a model on MNIST (defaults: the reference script\'s Net, Adadelta lr 1.0, gamma 0.7, 5 epochs).')
  .addOption(new Option('--model <name>', 'model to train').choices(MODEL_NAMES).default(DEFAULTS.model))
  .option('--data <source>', "'embedded' (10,000 digits shipped with the project) or a folder with the four MNIST IDX files (.gz or raw)", DEFAULTS.data)
  .option('--download', 'download the official MNIST files into data/mnist (md5-checked) and train on them', false)
  .option('--epochs <n>', 'number of epochs to train', positiveInt, DEFAULTS.epochs)
  .option('--batch-size <n>', 'input batch size for training', positiveInt, DEFAULTS.batchSize)
  .option('--test-batch-size <n>', 'input batch size for testing', positiveInt, DEFAULTS.testBatchSize)
  .addOption(new Option('--optimizer <name>', 'optimizer').choices(OPTIMIZERS).default(DEFAULTS.optimizer))
  .option('--lr <rate>', 'learning rate', positiveNumber, DEFAULTS.lr)
  .option('--gamma <factor>', 'learning rate step gamma (lr multiplied by it after each epoch)', positiveNumber, DEFAULTS.gamma)
  .option('--momentum <m>', 'momentum (sgd only)', fraction, DEFAULTS.momentum)
  .option('--seed <n>', 'random seed', nonNegativeInt, DEFAULTS.seed)
  .option('--log-interval <n>', 'how many batches to wait before logging training status', positiveInt, DEFAULTS.logInterval)
  .option('--limit <n>', 'use only the first N training samples (quick runs)', positiveInt)
  .option('--workers <n>', 'DataLoader worker threads (num_workers; 0 builds batches in the main thread)', nonNegativeInt, DEFAULTS.workers)
  .option('--compute-threads <n>', 'threads computing each training step (default: the fastest count in this machine\'s ' +
    'thread sweep, npm run bench -- --threads-sweep; else one per CPU, at most 4, on wasm/cpu; 1 on tensorflow and webgpu)', positiveInt)
  .addOption(new Option('--compute-split <how>', 'how the compute threads share a step: batch (data parallel: each thread trains a ' +
    'copy of the model on a part of the batch) or ops (one model; each convolution and matrix product is split across the threads, ' +
    'wasm only); default: the faster in the thread sweep, else batch').choices(COMPUTE_SPLITS))
  .addOption(new Option('--backend <name>', 'tfjs backend; auto prefers tfjs-node-gpu on a GPU, then webgpu on a hardware GPU adapter, then tfjs-node, wasm, cpu')
    .choices(BACKEND_REQUESTS).default(DEFAULTS.backend))
  .option('--out <dir>', 'run folder for config, metrics and checkpoints (default: runs/<timestamp>); never one that holds a run already')
  .option('--resume <dir>', 'continue the run in <dir> from its last checkpoint, with its own settings (an option given with another value is refused; --epochs may be raised)')
  .option('--profile', 'line-profile the training loop (as LINE_PROFILE=1); writes line-profile.txt/.json to the run folder', false)
  .option('--allow-oversubscribe', 'allow more --workers than SLURM_CPUS_PER_TASK inside a Slurm job', false)
  .option('--plain', 'plain log lines even on a terminal (no progress bar)', false)
  .addHelpText('after', `
Output: the model summary, "Train Epoch: ..." lines every --log-interval batches and a
"Test set: ..." line per epoch, as the PyTorch reference prints them. The run folder holds
config.json, metrics.jsonl (one line per epoch), last.ckpt (after every epoch) and best.ckpt.
One process writes a run folder at a time; a second is refused, naming the first.

Exit codes: 0 done, 1 internal error, 2 bad input or a fault in the run folder (the message says
which file and what to do), 3 stopped by a signal (resumable with --resume).

Environment: MNIST_MIRRORS (comma-separated base URLs for --download).

Examples:
  npm run train                                  # 5 epochs on the embedded digits
  npm run train -- --epochs 1 --limit 640        # a quick check
  npm run train -- --data ~/mnist                # a folder of IDX files
  npm run train -- --resume runs/2026-11-23-10-00-00 --epochs 8`);
}

/** The options of a parsed train command; `given` lists those written on the command line. */
export function trainOptionsOf(program: Command): TrainOptions & { plain: boolean } {
  const o = program.opts();
  return {
    model: o.model, data: o.data, download: o.download, epochs: o.epochs, batchSize: o.batchSize,
    testBatchSize: o.testBatchSize, lr: o.lr, gamma: o.gamma, optimizer: o.optimizer as OptimizerName,
    momentum: o.momentum, seed: o.seed, logInterval: o.logInterval, limit: o.limit, workers: o.workers, computeThreads: o.computeThreads,
    computeSplit: o.computeSplit as ComputeSplit | undefined,
    backend: o.backend as BackendRequest, out: o.out, resume: o.resume, profile: o.profile, allowOversubscribe: o.allowOversubscribe,
    given: Object.keys(o).filter((k) => program.getOptionValueSource(k) === 'cli'),
    plain: o.plain,
  };
}

/** Training arguments as the train command reads them (for the worker study); a bad one is a UserError naming it. */
export function parseTrainArgs(args: string[]): TrainOptions {
  const program = trainCommand().exitOverride((err: CommanderError) => {
    throw new UserError(`training options ${args.join(' ')}: ${err.message.replace(/^error: /, '')}`);
  }).configureOutput({ writeErr: () => {} });
  program.parse(args, { from: 'user' });
  return trainOptionsOf(program);
}
