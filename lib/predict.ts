/**
 * Predictions of a trained model: loading a checkpoint into its model, turning any PNG
 * into a 28x28 MNIST-like digit (grey, white on black, scaled down by area averaging),
 * the probabilities for one image, and for every image of a split across compute threads.
 */
import fs from 'node:fs';
import { PNG } from 'pngjs';
import * as tf from '@tensorflow/tfjs';
import { loadCheckpoint } from './training/checkpoint';
import { MNIST_MEAN, MNIST_STD } from './data/dataset';
import { UserError } from './util/errors';
import { createModel } from './models';
import type { Split } from './data/dataset';
import { DataParallel, defaultComputeThreads } from './training/data-parallel';
import { predictLogProbs } from './training/evaluate';
import { createOptimizer } from './training/optim';
import { checkFits } from './training/checkpoint';

export function modelFromCheckpoint(file: string): { model: tf.LayersModel; config: Record<string, unknown>; epoch: number; accuracy: number } {
  const ckpt = loadCheckpoint(file);
  const name = String(ckpt.config.model ?? 'net');
  const model = createModel(name, 1);
  try {
    checkFits(ckpt, file, name, model, 'this version builds');
  } catch (err) {
    model.dispose();
    throw err;
  }
  model.setWeights(ckpt.weights);
  tf.dispose(ckpt.weights);
  tf.dispose(ckpt.optimizer.map((o) => o.tensor));
  return { model, config: ckpt.config, epoch: ckpt.epoch, accuracy: ckpt.testAccuracy };
}

/** Reads a PNG as a 28x28 digit: grey, scaled down by area averaging, inverted if the background is light. */
export function readDigitPng(file: string): Uint8Array {
  let png: PNG;
  try {
    png = PNG.sync.read(fs.readFileSync(file));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${file}: no such file`);
    throw new UserError(`${file}: not a PNG image (${(err as Error).message}); expected a grey-scale or colour PNG of one digit`);
  }
  const { width, height, data } = png;
  const grey = new Float64Array(width * height);
  for (let i = 0; i < width * height; i++) {
    const a = data[4 * i + 3] / 255;
    // Transparent pixels count as background (white), as a digit drawn on a transparent canvas.
    const lum = 0.299 * data[4 * i] + 0.587 * data[4 * i + 1] + 0.114 * data[4 * i + 2];
    grey[i] = lum * a + 255 * (1 - a);
  }
  const out = new Uint8Array(28 * 28);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const y0 = Math.floor((y * height) / 28);
      const y1 = Math.max(y0 + 1, Math.floor(((y + 1) * height) / 28));
      const x0 = Math.floor((x * width) / 28);
      const x1 = Math.max(x0 + 1, Math.floor(((x + 1) * width) / 28));
      let sum = 0;
      for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) sum += grey[yy * width + xx];
      out[y * 28 + x] = Math.round(sum / ((y1 - y0) * (x1 - x0)));
    }
  }
  const mean = out.reduce((a, b) => a + b, 0) / out.length;
  if (mean > 127) for (let i = 0; i < out.length; i++) out[i] = 255 - out[i]; // MNIST: white digit on black
  return out;
}

/** Probabilities of the 10 digits for one 28x28 image of bytes (read asynchronously: a GPU backend has no synchronous read). */
export async function predictDigit(model: tf.LayersModel, pixels: Uint8Array): Promise<number[]> {
  const probs = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(pixels, (v) => (v / 255 - MNIST_MEAN) / MNIST_STD), [1, 28, 28, 1]);
    return tf.exp(model.predict(x) as tf.Tensor);
  });
  try {
    return Array.from(await probs.data());
  } finally {
    probs.dispose();
  }
}

/**
 * Probabilities for every image of a split, [count × 10] row by row. With several compute
 * threads (default: as training picks for the model and backend) each takes a contiguous run
 * of whole batches, on replicas started for this call with `model`'s weights and batch-norm
 * statistics, and ended after it; the result is the one-thread result.
 */
export async function predictSplit(model: tf.LayersModel, modelName: string, split: Split,
  o: { computeThreads?: number; batchSize?: number } = {}): Promise<Float32Array> {
  const backend = tf.getBackend();
  const batchSize = o.batchSize ?? 1000;
  const threads = backend === 'wasm' || backend === 'cpu' ? o.computeThreads ?? defaultComputeThreads(backend, process.env, modelName) : 1;
  let logProbs: Float32Array;
  if (threads <= 1 || split.count <= batchSize) {
    logProbs = await predictLogProbs(model, split, batchSize);
  } else {
    const optimizer = { name: 'adadelta' as const, lr: 1, momentum: 0 };
    const parallel = await DataParallel.start(model, { threads, model: modelName, seed: 1, backend, optimizer });
    const unused = createOptimizer(optimizer.name, optimizer.lr, optimizer.momentum); // sync sends an optimizer's state too
    try {
      await parallel.sync(model, unused, optimizer.lr, 1, 1);
      logProbs = await parallel.predict(model, split, batchSize);
    } finally {
      unused.dispose();
      await parallel.close();
    }
  }
  return logProbs.map(Math.exp);
}