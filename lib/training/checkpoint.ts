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

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** What makes a parsed header unusable (valid JSON of another shape: null, {}, offsets out of line); undefined when it is usable. */
function headerProblem(h: unknown): string | undefined {
  if (!h || typeof h !== 'object' || Array.isArray(h)) return `expected an object, got ${h === null ? 'null' : Array.isArray(h) ? 'an array' : typeof h}`;
  const header = h as Partial<CheckpointMeta & { tensors: unknown }>;
  if (!isCount(header.epoch)) return 'no epoch number';
  if (typeof header.testAccuracy !== 'number' || typeof header.bestAccuracy !== 'number') return 'no accuracies';
  if (!header.config || typeof header.config !== 'object') return 'no config';
  if (!Array.isArray(header.tensors) || !header.tensors.length) return 'no list of tensors';
  for (const [i, t] of (header.tensors as Partial<StoredTensor>[]).entries()) {
    const what = `tensor ${i + 1}`;
    if (!t || typeof t !== 'object' || typeof t.name !== 'string') return `${what} has no name`;
    if (!Array.isArray(t.shape) || !t.shape.every(isCount)) return `${what} (${t.name}) has no valid shape`;
    if (t.dtype !== 'float32' && t.dtype !== 'int32') return `${what} (${t.name}) has dtype ${String(t.dtype)}, expected float32 or int32`;
    if (!isCount(t.offset) || t.offset % 4 !== 0) return `${what} (${t.name}) has offset ${String(t.offset)}, expected a multiple of 4 >= 0`;
    if (!isCount(t.length) || t.length !== t.shape.reduce((a, b) => a * b, 1)) return `${what} (${t.name}) has length ${String(t.length)}, its shape holds ${t.shape.reduce((a, b) => a * b, 1)}`;
  }
  return undefined;
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
  const shapeProblem = headerProblem(header);
  if (shapeProblem) throw damaged(`its header is not a checkpoint's: ${shapeProblem}`);
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
    if (t.offset + t.length * 4 > aligned.length) {
      tf.dispose([...weights, ...optimizer.map((o) => o.tensor)]);
      throw new UserError(`${file}: truncated checkpoint (tensor ${t.name})`);
    }
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

/** A checkpoint of another model, or of other shapes, is refused with both named. */
export function checkFits(ckpt: Checkpoint, file: string, name: string, model: tf.LayersModel, expects = 'this run trains'): void {
  const saved = String(ckpt.config.model ?? name);
  const shapes = model.weights.map((w) => w.shape.join('x'));
  const stored = ckpt.weights.map((w) => w.shape.join('x'));
  if (saved !== name || shapes.join() !== stored.join()) {
    tf.dispose([...ckpt.weights, ...ckpt.optimizer.map((o) => o.tensor)]);
    // Shapes only: tfjs's own message for a mismatch prints every value of the tensors (kilobytes).
    const first = shapes.findIndex((s, i) => s !== stored[i]);
    const where = first >= 0 && first < Math.max(shapes.length, stored.length)
      ? `; weight ${first + 1} is ${stored[first] ?? 'missing'} in the file, ${shapes[first] ?? 'not in the model'} in the model` : '';
    throw new UserError(`${file}: a checkpoint of model '${saved}' (${stored.length} weights: ${stored.slice(0, 3).join(', ')}…), ` +
      `but ${expects} '${name}' (${shapes.length} weights: ${shapes.slice(0, 3).join(', ')}…)${where}`);
  }
}
