/** The project's models by name (`--model NAME`). Each outputs log-probabilities. */
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../errors';
import { rng } from '../random';
import { InitSeeds, SeededDropout } from './layers';
import { buildNet } from './net';

export interface ModelEntry {
  description: string;
  build: (seeds: InitSeeds) => tf.Sequential;
}

export const MODELS: Record<string, ModelEntry> = {
  net: { description: "the assignment's Net: 2 conv 5x5 (32, 64), fc 1024, dropout 0.5, fc 10", build: buildNet },
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
