/**
 * The well-known small MNIST designs users compare against the assignment's Net. Each is
 * written as PyTorch users know it (3x3 `valid` convolutions, ReLU → BatchNorm → Dropout
 * blocks, 1x1 "transition" convolutions, global average pooling) and ends in log-softmax.
 * Parameter counts are PyTorch's (weights, biases, batch-norm scale and shift).
 */
import * as tf from '@tensorflow/tfjs';
import { BatchNorm2d, Conv2d, InitSeeds, LogSoftmax, SeededDropout } from './layers';

type Block = (model: tf.Sequential) => void;

interface ConvSpec { out: number; k: number; bias?: boolean; relu?: boolean; bn?: boolean; dropout?: number; pad?: 'same' | 'valid' }

/** A convolution block: conv → [ReLU] → [BatchNorm] → [Dropout]. */
function conv(seeds: InitSeeds, inChannels: number, spec: ConvSpec, first = false): Block {
  return (model) => {
    model.add(new Conv2d({
      ...(first ? { inputShape: [28, 28, 1] } : {}), filters: spec.out, kernelSize: spec.k, padding: spec.pad ?? 'valid',
      useBias: spec.bias ?? false, ...seeds.torchDefault(spec.k * spec.k * inChannels),
    }));
    if (spec.relu ?? true) model.add(tf.layers.reLU());
    if (spec.bn) model.add(new BatchNorm2d());
    if (spec.dropout) model.add(new SeededDropout({ rate: spec.dropout }));
  };
}

const maxPool = (): Block => (m) => m.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
const avgPool = (size: number): Block => (m) => m.add(tf.layers.averagePooling2d({ poolSize: size, strides: size }));
const gap = (): Block => (m) => m.add(tf.layers.globalAveragePooling2d({}));
const flatten = (): Block => (m) => m.add(tf.layers.flatten());
const head = (): Block => (m) => m.add(new LogSoftmax({}));

/** Builds a Sequential from blocks; channel counts are threaded through `chain`. */
function sequential(name: string, blocks: Block[]): tf.Sequential {
  const model = tf.sequential({ name });
  for (const b of blocks) b(model);
  return model;
}

/** Convolutions in order, each taking the previous one's channels. */
function chain(seeds: InitSeeds, specs: (ConvSpec | Block)[]): Block[] {
  let channels = 1;
  let first = true;
  return specs.map((s) => {
    if (typeof s === 'function') return s;
    const block = conv(seeds, channels, s, first);
    channels = s.out;
    first = false;
    return block;
  });
}

/** flatten 784 → 128 → ReLU → 10: 101,770 parameters. */
export function buildFc(seeds: InitSeeds): tf.Sequential {
  const model = tf.sequential({ name: 'FC' });
  model.add(tf.layers.flatten({ inputShape: [28, 28, 1] }));
  model.add(tf.layers.dense({ units: 128, ...seeds.torchDefault(784) }));
  model.add(tf.layers.reLU());
  model.add(tf.layers.dense({ units: 10, ...seeds.torchDefault(128) }));
  model.add(new LogSoftmax({}));
  return model;
}

/** conv 1→24 3x3, pool, conv 24→36 3x3, pool, 900 → 128 → 10, with biases: 124,670. */
export function buildCnnSmall(seeds: InitSeeds): tf.Sequential {
  const blocks = chain(seeds, [{ out: 24, k: 3, bias: true }, maxPool(), { out: 36, k: 3, bias: true }, maxPool()]);
  blocks.push(flatten(), (m) => {
    m.add(tf.layers.dense({ units: 128, ...seeds.torchDefault(900) }));
    m.add(tf.layers.reLU());
    m.add(tf.layers.dense({ units: 10, ...seeds.torchDefault(128) }));
  }, head());
  return sequential('CNNSmall', blocks);
}

/** Bias-free 3x3 convolutions with 1x1 transitions and a 7x7 output layer: 14,620 (14,796 with batch norm). */
function build14k(seeds: InitSeeds, bn: boolean, name: string): tf.Sequential {
  return sequential(name, [...chain(seeds, [
    { out: 8, k: 3, bn }, { out: 16, k: 3, bn }, { out: 24, k: 3, bn },
    { out: 8, k: 1 }, maxPool(),
    { out: 16, k: 3, bn }, { out: 24, k: 3, bn },
    { out: 10, k: 1 },
    { out: 10, k: 7, relu: false },
  ]), flatten(), head()]);
}
export const buildBase14k = (seeds: InitSeeds) => build14k(seeds, false, 'Base14k');
export const buildBn14k = (seeds: InitSeeds) => build14k(seeds, true, 'BN14k');

/** Batch-normed 3x3 blocks, global average pooling, 1x1 output, dropout 0.1: 8,018. */
export function buildGap8k(seeds: InitSeeds): tf.Sequential {
  const d = 0.1;
  const blocks = chain(seeds, [
    { out: 6, k: 3, bn: true, dropout: d }, { out: 16, k: 3, bn: true, dropout: d }, { out: 20, k: 3, bn: true, dropout: d },
    { out: 6, k: 1 }, maxPool(),
    { out: 16, k: 3, bn: true, dropout: d }, { out: 20, k: 3, bn: true, dropout: d },
    gap(),
  ]);
  blocks.push(pointwiseHead(seeds, 20), flatten(), head());
  return sequential('GAP8k', blocks);
}

/** After global average pooling: a 1x1 convolution C → 10 on the 1x1 map, bias-free. */
function pointwiseHead(seeds: InitSeeds, channels: number): Block {
  return (m) => {
    m.add(tf.layers.reshape({ targetShape: [1, 1, channels] }));
    m.add(new Conv2d({ filters: 10, kernelSize: 1, padding: 'valid', useBias: false, ...seeds.torchDefault(channels) }));
  };
}

/** Bias-free, ReLU → BN → dropout blocks, average pooling, GAP, 1x1 output: 14,320. */
export function buildGap14k(seeds: InitSeeds): tf.Sequential {
  const d = 0.1;
  const blocks = chain(seeds, [
    { out: 16, k: 3, bn: true, dropout: d }, { out: 16, k: 3, bn: true, dropout: d }, { out: 16, k: 3, bn: true, dropout: d },
    avgPool(2),
    { out: 32, k: 3, bn: true, dropout: d }, { out: 16, k: 3, bn: true },
    gap(),
  ]);
  blocks.push(pointwiseHead(seeds, 16), flatten(), head());
  return sequential('GAP14k', blocks);
}

/**
 * With biases: 3x3 1→14, 14→30 (ReLU, BN, dropout), 1x1 30→10, max pool, 3x3 10→14, 14→15,
 * 15→15 (ReLU, BN, dropout), avg pool 6, 1x1 15→15 (BN, ReLU, dropout), 1x1 15→10: 10,085.
 * (Its published description says 9,962, from a parameter table with arithmetic slips.)
 */
export function buildBn10k(seeds: InitSeeds): tf.Sequential {
  const d = 0.1;
  const blocks = chain(seeds, [
    { out: 14, k: 3, bias: true, bn: true, dropout: d }, { out: 30, k: 3, bias: true, bn: true, dropout: d },
    { out: 10, k: 1, bias: true, relu: false }, maxPool(),
    { out: 14, k: 3, bias: true, bn: true, dropout: d }, { out: 15, k: 3, bias: true, bn: true, dropout: d },
    { out: 15, k: 3, bias: true, bn: true, dropout: d },
    avgPool(6),
  ]);
  blocks.push((m) => {
    m.add(new Conv2d({ filters: 15, kernelSize: 1, padding: 'valid', useBias: true, ...seeds.torchDefault(15) }));
    m.add(new BatchNorm2d());
    m.add(tf.layers.reLU());
    m.add(new SeededDropout({ rate: d }));
    m.add(new Conv2d({ filters: 10, kernelSize: 1, padding: 'valid', useBias: true, ...seeds.torchDefault(15) }));
  }, flatten(), head());
  return sequential('BN10k', blocks);
}
