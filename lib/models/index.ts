/** The project's models by name (`--model NAME`). Each outputs log-probabilities. */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../util/errors';
import { rng } from '../util/random';
import { InitSeeds, SeededDropout } from './layers';
import { buildNet, buildPytorchExampleNet } from './net';
import { buildBase14k, buildBn10k, buildBn14k, buildCnnSmall, buildFc, buildGap14k, buildGap8k } from './zoo';

export interface ModelEntry {
  description: string;
  build: (seeds: InitSeeds) => tf.Sequential;
  /** Trains on one compute thread by default: its step is shorter than sharing it out costs. */
  oneThread?: boolean;
}

export const MODELS: Record<string, ModelEntry> = {
  net: { description: "the assignment's Net: 2 conv 5x5 (32, 64), fc 1024, dropout 0.5, fc 10", build: buildNet },
  'pytorch-example': {
    description: "pytorch/examples' mnist/main.py Net, the exercise's starting code: 2 conv 3x3 (32, 64), max-pool, dropout 0.25, fc 128, dropout 0.5, fc 10",
    build: buildPytorchExampleNet,
  },
  // A step of 64 takes about 3 ms on one thread; 2 compute threads trained it at 0.29× one thread's
  // speed (npm run bench -- --model all, 2 cores, 2026-11-26).
  fc: { description: 'a fully connected baseline: flatten 784 → 128 → ReLU → 10', build: buildFc, oneThread: true },
  'cnn-small': { description: 'a small CNN: conv 3x3 24 → pool → conv 3x3 36 → pool → fc 128 → 10', build: buildCnnSmall },
  'base-14k': { description: 'bias-free 3x3 convolutions with 1x1 transitions and a 7x7 output convolution', build: buildBase14k },
  'bn-14k': { description: 'base-14k with batch norm after every 3x3 convolution', build: buildBn14k },
  'gap-8k': { description: 'batch-normed 3x3 blocks, global average pooling and a 1x1 output, dropout 0.1', build: buildGap8k },
  'gap-14k': { description: 'bias-free ReLU/BN/dropout blocks, average pooling, global average pooling, 1x1 output', build: buildGap14k },
  'bn-10k': { description: 'ReLU/BN/dropout blocks with biases, max and average pooling, 1x1 head', build: buildBn10k },
};

export const MODEL_NAMES = Object.keys(MODELS);

/** Builds a model with weights drawn from rng(seed, 'init'). */
export function createModel(name: string, seed: number): tf.Sequential {
  const entry = MODELS[name];
  if (!entry) throw new UserError(`unknown model '${name}': expected one of ${MODEL_NAMES.join(', ')}`);
  return entry.build(new InitSeeds(rng(seed, 'init', name)));
}

/** Points every dropout layer at a seeded stream (one per epoch, so resuming replays it). */
export function seedDropout(model: tf.LayersModel, random: () => number): void {
  for (const layer of model.layers) if (layer instanceof SeededDropout) layer.random = random;
}
