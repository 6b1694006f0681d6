import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { describe, it } from 'node:test';
import { encodeIdx, parseIdx, readImages, readLabels } from '../../lib/data/idx';
import { loadFolder } from '../../lib/data/dataset';
import { MNIST_FILES } from '../../lib/data/mnist-files';
import { UserError } from '../../lib/util/errors';
import { tmpDir, writeDataFolder } from '../helpers';

const images = (n: number) => encodeIdx([n, 28, 28], new Uint8Array(n * 784).fill(9));
const labels = (values: number[]) => encodeIdx([values.length], Uint8Array.from(values));

function write(dir: string, name: string, bytes: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

function rejects(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UserError, `expected a UserError, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('IDX reader', () => {
  const dir = tmpDir();

  it('reads raw and gzip files with their dimensions', () => {
    const raw = readImages(write(dir, 'a-images', images(3)));
    assert.deepEqual(raw.dims, [3, 28, 28]);
    assert.equal(raw.data.length, 3 * 784);
    const gz = readLabels(write(dir, 'a-labels.gz', zlib.gzipSync(labels([1, 2, 9]))));
    assert.deepEqual([...gz.data], [1, 2, 9]);
  });

  it('rejects an empty file, naming it', () => {
    const file = write(dir, 'empty', Buffer.alloc(0));
    rejects(() => readImages(file), new RegExp(`${file}: empty file`));
  });

  it('rejects a wrong magic number, saying what was expected', () => {
    const bytes = images(2);
    bytes.writeUInt32BE(0x00000801, 0); // a label file's magic
    rejects(() => readImages(write(dir, 'magic', bytes)), /magic: wrong magic number 0x00000801, expected 0x00000803 for an image file/);
    rejects(() => readLabels(write(dir, 'text', Buffer.from('hello world'))), /wrong magic number/);
  });

  it('rejects a truncated file and one with trailing bytes', () => {
    const full = images(2);
    rejects(() => readImages(write(dir, 'short', full.subarray(0, full.length - 100))), /short: truncated: header says 2x28x28 \(1584 bytes\), file has 1484 bytes/);
    rejects(() => readImages(write(dir, 'long', Buffer.concat([full, Buffer.alloc(5)]))), /has trailing bytes/);
    rejects(() => readImages(write(dir, 'header', full.subarray(0, 9))), /truncated header/);
  });

  it('rejects a count in the header that does not match the data', () => {
    const bytes = images(2);
    bytes.writeUInt32BE(5, 4);
    rejects(() => readImages(write(dir, 'count', bytes)), /header says 5x28x28/);
  });

  it('rejects a truncated gzip stream', () => {
    const gz = zlib.gzipSync(images(4));
    rejects(() => readImages(write(dir, 'cut.gz', gz.subarray(0, gz.length - 20))), /cut\.gz: corrupt gzip data/);
  });

  it('rejects images that are not 28x28 and labels out of range', () => {
    rejects(() => readImages(write(dir, 'big', encodeIdx([1, 32, 32], new Uint8Array(1024)))), /images are 32x32, expected 28x28/);
    rejects(() => readLabels(write(dir, 'lab', labels([1, 10]))), /label 10 at index 1 is out of range, expected 0\.\.9/);
  });

  it('parses what encodeIdx writes (round trip)', () => {
    const data = Uint8Array.from({ length: 784 * 2 }, (_, i) => i % 256);
    const parsed = parseIdx(encodeIdx([2, 28, 28], data), 'mem', 3);
    assert.deepEqual([...parsed.data], [...data]);
  });
});

describe('data folder', () => {
  it('loads the four files, gzip or raw', () => {
    const raw = loadFolder(writeDataFolder(tmpDir(), 30, 10));
    assert.equal(raw.train.count, 30);
    assert.equal(raw.test.count, 10);
    const gz = loadFolder(writeDataFolder(tmpDir(), 30, 10, true));
    assert.deepEqual([...gz.train.labels], [...raw.train.labels]);
  });

  it('rejects a label file whose count does not match its image file', () => {
    const dir = writeDataFolder(tmpDir(), 30, 10);
    fs.writeFileSync(path.join(dir, MNIST_FILES.testLabels), labels([1, 2, 3]));
    rejects(() => loadFolder(dir), /t10k-labels-idx1-ubyte: 3 labels, but .*t10k-images-idx3-ubyte has 10 images/);
  });

  it('names the missing file and the folder', () => {
    const dir = writeDataFolder(tmpDir(), 30, 10);
    fs.rmSync(path.join(dir, MNIST_FILES.trainLabels));
    rejects(() => loadFolder(dir), /missing train-labels-idx1-ubyte \(or train-labels-idx1-ubyte\.gz\)/);
    rejects(() => loadFolder(path.join(dir, 'nope')), /nope: data folder does not exist/);
  });
});
