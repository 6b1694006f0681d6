/**
 * Checkpoints: model weights, optimizer state, epoch, accuracies, config and the epoch
 * metrics so far in one binary file ("MNLCKPT1", a little-endian uint32 header length, a
 * JSON header, then the float32/int32 values), written to a temporary name and renamed.
 * The header carries the SHA-256 of the values, checked on load, so a truncated or
 * damaged file is refused with a message, never half-loaded.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import type { EpochMetrics } from '../runs/run-folder';
import { UserError } from '../util/errors';
import { writeFileAtomic } from '../util/files';
import { withOptimizerWeights } from './optim';

type NamedTensor = { name: string; tensor: tf.Tensor };

const MAGIC = 'MNLCKPT1';

interface StoredTensor { name: string; shape: number[]; dtype: 'float32' | 'int32'; offset: number; length: number }

export interface CheckpointMeta {
  epoch: number;
  testAccuracy: number;
  bestAccuracy: number;
  config: Record<string, unknown>;
  /** The run's epoch metrics up to this epoch (kept with the weights, so a resumed run's records match them). */
  metrics?: EpochMetrics[];
}

export interface Checkpoint extends CheckpointMeta {
  weights: tf.Tensor[];
  optimizer: NamedTensor[];
}

export async function saveCheckpoint(file: string, model: tf.LayersModel, optimizer: tf.Optimizer, meta: CheckpointMeta): Promise<void> {
  const tensors: StoredTensor[] = [];
  const chunks: Buffer[] = [];
  let offset = 0;
  await withOptimizerWeights(optimizer, async (optimizerState) => {
    const named: NamedTensor[] = [
      ...model.getWeights().map((t, i) => ({ name: `weight/${i}`, tensor: t })),
      ...optimizerState.map((w) => ({ name: `optimizer/${w.name}`, tensor: w.tensor })),
    ];
    for (const { name, tensor } of named) {
      const values = await tensor.data();
      const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      tensors.push({ name, shape: tensor.shape, dtype: tensor.dtype as 'float32' | 'int32', offset, length: values.length });
      chunks.push(Buffer.from(bytes));
      offset += bytes.length;
    }
  });
  const checksum = crypto.createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
  const header = Buffer.from(JSON.stringify({ ...meta, tensors, checksum }));
  const pad = (4 - ((MAGIC.length + 4 + header.length) % 4)) % 4;
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length + pad);
  writeFileAtomic(file, Buffer.concat([Buffer.from(MAGIC), len, header, Buffer.alloc(pad, 0x20), ...chunks]));
}

export function loadCheckpoint(file: string): Checkpoint {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new UserError(`${file}: no checkpoint here (runs write last.ckpt after each epoch)`);
  }
  if (bytes.subarray(0, MAGIC.length).toString() !== MAGIC) throw new UserError(`${file}: not a checkpoint of this project`);
  const damaged = (what: string) => new UserError(`${file}: damaged checkpoint (${what}): it was truncated or overwritten`);
  if (bytes.length < MAGIC.length + 4) throw damaged('no header');
  const headerLen = bytes.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (start + headerLen > bytes.length) throw damaged(`its header needs ${headerLen} bytes, the file has ${bytes.length - start}`);
  let header: CheckpointMeta & { tensors: StoredTensor[]; checksum?: string };
  try {
    header = JSON.parse(bytes.subarray(start, start + headerLen).toString());
  } catch {
    throw damaged('its header is not valid JSON');
  }
  const dataStart = start + headerLen;
  if (header.checksum) {
    const actual = crypto.createHash('sha256').update(bytes.subarray(dataStart)).digest('hex');
    if (actual !== header.checksum) throw damaged(`the checksum of its ${bytes.length - dataStart} bytes of values does not match`);
  }
  const aligned = new Uint8Array(bytes.length - dataStart);
  aligned.set(bytes.subarray(dataStart));
  const weights: tf.Tensor[] = [];
  const optimizer: NamedTensor[] = [];
  for (const t of header.tensors) {
    if (t.offset + t.length * 4 > aligned.length) throw new UserError(`${file}: truncated checkpoint (tensor ${t.name})`);
    const values = t.dtype === 'int32'
      ? new Int32Array(aligned.buffer, t.offset, t.length)
      : new Float32Array(aligned.buffer, t.offset, t.length);
    const tensor = tf.tensor(values.slice(), t.shape, t.dtype);
    if (t.name.startsWith('weight/')) weights.push(tensor);
    else optimizer.push({ name: t.name.slice('optimizer/'.length), tensor });
  }
  const { tensors: _, checksum: __, ...meta } = header;
  return { ...meta, weights, optimizer };
}
