/**
 * Loads a data set (uint8 images + labels) from one of the sources the CLI offers:
 * the embedded default, a folder of IDX files, or the official files downloaded.
 * After loading, every source is the same `Dataset`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors';
import { checkFolder, isSymlink } from '../util/path-checks';
import { dataRoot } from '../util/paths';
import { downloadMnist } from './download';
import { ensureEmbeddedIdx, EMBEDDED_NOTE } from './embedded';
import { findIdxFile, MNIST_FILES } from './mnist-files';
import { readImages, readLabels } from './idx';

/** Mean and standard deviation of MNIST's training pixels (the reference's Normalize). */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
export const IMAGE_SIZE = 28;

export interface Split {
  /** count x 28 x 28 bytes, row-major. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface Dataset {
  /** Short name for logs and reports, e.g. "embedded" or the folder path. */
  name: string;
  train: Split;
  test: Split;
  /** What the user should know about this data (printed at the start of a run). */
  note: string;
  /** The content's identity: a hash of the four files' names, sizes and bytes (dataFingerprint); the same files anywhere give the same. */
  fingerprint?: string;
}

/**
 * The identity of a data folder's content: SHA-256 (first 16 hex digits) over each of the four
 * files' name, size and bytes. A folder whose files changed is other data under the same name.
 */
export function dataFingerprint(dir: string): string {
  const hash = crypto.createHash('sha256');
  for (const base of Object.values(MNIST_FILES)) {
    const file = findIdxFile(dir, base);
    const bytes = fs.readFileSync(file);
    hash.update(`${path.basename(file)}\0${bytes.length}\0`).update(bytes);
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The split in shared memory: DataLoader workers read it without copies. Data sets are
 * loaded this way, so this is a no-op for them; other splits are copied once.
 */
export function shareSplit(split: Split): Split {
  if (split.images.buffer instanceof SharedArrayBuffer && split.labels.buffer instanceof SharedArrayBuffer) return split;
  const images = new Uint8Array(new SharedArrayBuffer(split.images.byteLength));
  images.set(split.images);
  const labels = new Uint8Array(new SharedArrayBuffer(split.labels.byteLength));
  labels.set(split.labels);
  return { images, labels, count: split.count };
}

function readSplit(dir: string, imagesBase: string, labelsBase: string): Split {
  const imagesFile = findIdxFile(dir, imagesBase);
  const labelsFile = findIdxFile(dir, labelsBase);
  const images = readImages(imagesFile);
  const labels = readLabels(labelsFile);
  if (images.dims[0] !== labels.dims[0]) {
    throw new UserError(`${labelsFile}: ${labels.dims[0]} labels, but ${imagesFile} has ${images.dims[0]} images; ` +
      'the two files must come from the same set');
  }
  if (images.dims[0] === 0) throw new UserError(`${imagesFile}: holds 0 images; a data set needs at least one in each split`);
  return shareSplit({ images: images.data, labels: labels.data, count: images.dims[0] });
}

/** Reads a folder holding the four standard IDX files, each optionally gzipped. */
export function loadFolder(dir: string): Dataset {
  // A link (even a broken or looping one) is there: checkFolder names what is wrong with it.
  if (!fs.existsSync(dir) && !isSymlink(dir)) throw new UserError(`${dir}: data folder does not exist`);
  checkFolder('--data', dir);
  const train = readSplit(dir, MNIST_FILES.trainImages, MNIST_FILES.trainLabels);
  const test = readSplit(dir, MNIST_FILES.testImages, MNIST_FILES.testLabels);
  return { name: dir, train, test, note: `folder ${dir}: ${train.count} training and ${test.count} test images`, fingerprint: dataFingerprint(dir) };
}

/** The embedded default (built into data/embedded on first use). */
export function loadEmbedded(root = dataRoot()): Dataset {
  const dir = ensureEmbeddedIdx(path.join(root, 'embedded'));
  return { ...loadFolder(dir), name: 'embedded', note: EMBEDDED_NOTE };
}

/** Keeps the first `limit` training samples (for quick runs). */
export function limitTrain(data: Dataset, limit: number | undefined): Dataset {
  if (!limit || limit >= data.train.count) return data;
  const { train } = data;
  const px = IMAGE_SIZE * IMAGE_SIZE;
  return {
    ...data,
    train: { images: train.images.subarray(0, limit * px), labels: train.labels.subarray(0, limit), count: limit },
    note: `${data.note}; --limit ${limit}: first ${limit} training samples`,
  };
}

/** Where a run's data comes from: `--data` (embedded or a folder), `--download`, `--limit`. */
export interface DataChoice { data: string; download: boolean; limit?: number }

/** The content fingerprint of the data the options name, without loading it; undefined where there is none yet (a folder to be downloaded or missing). */
export function fingerprintOf(choice: Pick<DataChoice, 'data' | 'download'>): string | undefined {
  const dir = choice.download ? path.join(dataRoot(), 'mnist') : choice.data === 'embedded' ? ensureEmbeddedIdx(path.join(dataRoot(), 'embedded')) : choice.data;
  try {
    return dataFingerprint(dir);
  } catch {
    return undefined;
  }
}

/** Loads the data set named by the options (embedded, a folder, or downloaded). */
export async function loadData(choice: DataChoice, log: (s: string) => void): Promise<Dataset> {
  let data: Dataset;
  if (choice.download) {
    const dir = await downloadMnist({ dir: path.join(dataRoot(), 'mnist'), log });
    data = loadFolder(dir);
  } else if (choice.data === 'embedded') {
    data = loadEmbedded();
  } else {
    data = loadFolder(choice.data);
  }
  return limitTrain(data, choice.limit);
}
