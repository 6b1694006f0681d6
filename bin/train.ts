#!/usr/bin/env node
/** `npm run train -- [options]`: trains a model on MNIST as pytorch/examples' mnist/main.py does. */
import { runMain } from '../lib/util/errors';
import { createProgress } from '../lib/training/progress';
import { trainCommand, trainOptionsOf } from '../lib/training/cli';
import { runTraining } from '../lib/training/run';

runMain(async () => {
  const program = trainCommand().parse();
  // With --resume only the options written on the command line are held against the run's.
  const { plain, ...options } = trainOptionsOf(program);
  await runTraining(options, createProgress(plain)).then((r) => {
    if (r.interrupted) process.exitCode = 3; // stopped early on a signal; resumable
  });
});
