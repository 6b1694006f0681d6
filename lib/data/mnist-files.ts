import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../util/errors';

/** The four standard file names of MNIST (and of Fashion-MNIST), without `.gz`. */
export const MNIST_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The path of `base` or `base.gz` in `dir`, or a clear error naming both. */
export function findIdxFile(dir: string, base: string): string {
  for (const name of [base, `${base}.gz`]) {
    const file = path.join(dir, name);
    if (fs.existsSync(file)) return file;
  }
  throw new UserError(`${dir}: missing ${base} (or ${base}.gz); a data folder needs the four MNIST files: ` +
    Object.values(MNIST_FILES).join(', '));
}
