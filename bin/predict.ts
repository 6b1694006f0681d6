#!/usr/bin/env node
/** `npm run predict -- --checkpoint FILE [--image PNG | --index N]`: one digit's prediction and probabilities. */
import path from 'node:path';
import { BACKEND_REQUESTS, BackendRequest, initBackend } from '../lib/engine/backend';
import { command, nonNegativeInt } from '../lib/util/cli-options';
import { runMain, UserError } from '../lib/util/errors';
import { loadData } from '../lib/data/dataset';
import { checkReadableFile } from '../lib/util/path-checks';
import { modelFromCheckpoint, predictDigit, readDigitPng } from '../lib/predict';

runMain(async () => {
  const program = command('predict')
    .description('Predict one digit with a trained checkpoint (best.ckpt or last.ckpt of a run folder).')
    .requiredOption('--checkpoint <file>', 'a checkpoint written by train (e.g. runs/<run>/best.ckpt)')
    .option('--image <png>', 'a PNG of one digit (any size: scaled to 28x28; dark-on-light is inverted)')
    .option('--index <n>', 'the N-th image of the test split of the data the model was trained on', nonNegativeInt)
    .option('--backend <name>', `tfjs backend: ${BACKEND_REQUESTS.join(', ')}`, 'auto')
    .parse();
  const o = program.opts();
  if ((o.image === undefined) === (o.index === undefined)) throw new UserError('give exactly one of --image PNG or --index N');
  if (!BACKEND_REQUESTS.includes(o.backend)) throw new UserError(`unknown backend '${o.backend}'`);
  await initBackend(o.backend as BackendRequest);
  const { model, config, epoch, accuracy } = modelFromCheckpoint(checkReadableFile('--checkpoint', o.checkpoint));
  let pixels: Uint8Array;
  let truth = '';
  if (o.image) {
    pixels = readDigitPng(o.image);
  } else {
    const data = await loadData({ data: String(config.data ?? 'embedded'), download: false }, () => {});
    if (o.index >= data.test.count) throw new UserError(`--index ${o.index}: the test split of ${data.name} has ${data.test.count} images (0..${data.test.count - 1})`);
    pixels = data.test.images.slice(o.index * 784, (o.index + 1) * 784);
    truth = ` (true label ${data.test.labels[o.index]})`;
  }
  const probs = await predictDigit(model, pixels);
  const best = probs.indexOf(Math.max(...probs));
  process.stdout.write(`Model ${config.model} from ${o.checkpoint} (epoch ${epoch}, test accuracy ${accuracy.toFixed(2)}%)\n`);
  process.stdout.write(`Prediction: ${best} with probability ${(100 * probs[best]).toFixed(2)}%${truth}\n\n`);
  probs.forEach((p, d) => process.stdout.write(`  ${d}: ${(100 * p).toFixed(2).padStart(6)}%  ${'#'.repeat(Math.round(40 * p))}\n`));
});
