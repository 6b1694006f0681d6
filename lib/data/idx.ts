/**
 * The IDX file format of MNIST (http://yann.lecun.com/exdb/mnist/, "FILE FORMATS"):
 * two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions, then
 * each dimension as a big-endian uint32, then the data. Files may be gzip-compressed.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import { UserError } from '../util/errors';

export const IDX_TYPE_UBYTE = 0x08;
export const IMAGES_RANK = 3;
export const LABELS_RANK = 1;
const GZIP_MAGIC = [0x1f, 0x8b];

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Decompresses when the bytes start with the gzip magic; the name is only for messages. */
export function maybeGunzip(bytes: Buffer, file: string): Buffer {
  if (bytes.length >= 2 && bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]) {
    try {
      return zlib.gunzipSync(bytes);
    } catch (err) {
      // zlib tells the two apart: the stream ended early (Z_BUF_ERROR: truncated), or its bytes are wrong (a checksum or data error: damaged).
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === 'Z_BUF_ERROR' ? 'the file ends before its gzip stream does: it is truncated'
        : 'its compressed bytes are damaged (a wrong checksum or invalid data), though the file is complete';
      throw new UserError(`${file}: corrupt gzip data (${(err as Error).message}): ${why}; download it again`);
    }
  }
  return bytes;
}

/** Parses and validates an IDX buffer of unsigned bytes with the given rank. */
export function parseIdx(raw: Buffer, file: string, rank: number): IdxArray {
  const bytes = maybeGunzip(raw, file);
  if (bytes.length === 0) throw new UserError(`${file}: empty file, expected an IDX file`);
  if (bytes.length < 4) throw new UserError(`${file}: ${bytes.length} bytes is too short for an IDX header`);
  const magic = bytes.readUInt32BE(0);
  const expectedMagic = (IDX_TYPE_UBYTE << 8) | rank;
  if (magic !== expectedMagic) {
    const hex = (n: number) => '0x' + n.toString(16).padStart(8, '0');
    const what = rank === IMAGES_RANK ? 'an image file' : 'a label file';
    throw new UserError(`${file}: wrong magic number ${hex(magic)}, expected ${hex(expectedMagic)} ` +
      `for ${what} (unsigned bytes, ${rank} dimension${rank > 1 ? 's' : ''})`);
  }
  const headerBytes = 4 + 4 * rank;
  if (bytes.length < headerBytes) {
    throw new UserError(`${file}: truncated header: ${bytes.length} bytes, expected at least ${headerBytes}`);
  }
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(bytes.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count;
  if (bytes.length !== expected) {
    const cause = bytes.length < expected ? 'truncated' : 'has trailing bytes';
    throw new UserError(`${file}: ${cause}: header says ${dims.join('x')} (${expected} bytes), file has ${bytes.length} bytes`);
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, count) };
}

/** Reads an IDX file from disk, naming the file in every error. */
export function readIdxFile(file: string, rank: number): IdxArray {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot read (${(err as Error).message})`);
  }
  return parseIdx(raw, file, rank);
}

/** Reads an image file: N x 28 x 28 unsigned bytes. */
export function readImages(file: string, height = 28, width = 28): IdxArray {
  const images = readIdxFile(file, IMAGES_RANK);
  const [, h, w] = images.dims;
  if (h !== height || w !== width) {
    throw new UserError(`${file}: images are ${h}x${w}, expected ${height}x${width}`);
  }
  return images;
}

/** Reads a label file and checks every label is a class index below numClasses. */
export function readLabels(file: string, numClasses = 10): IdxArray {
  const labels = readIdxFile(file, LABELS_RANK);
  for (let i = 0; i < labels.data.length; i++) {
    if (labels.data[i] >= numClasses) {
      throw new UserError(`${file}: label ${labels.data[i]} at index ${i} is out of range, expected 0..${numClasses - 1}`);
    }
  }
  return labels;
}

/** Encodes an IDX file of unsigned bytes. */
export function encodeIdx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE((IDX_TYPE_UBYTE << 8) | dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}
