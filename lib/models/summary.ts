/**
 * A model summary in torchsummary's layout, derived from the model object: layer names
 * as PyTorch calls them, output shapes in PyTorch's (N, C, H, W) order, and parameters
 * counted as PyTorch counts them (batch-norm running statistics are buffers, not
 * parameters).
 */
import * as tf from '@tensorflow/tfjs';

/** tfjs-layers class names → the PyTorch module names readers expect. */
const TORCH_NAMES: Record<string, string> = {
  Conv2D: 'Conv2d',
  ReLU: 'ReLU',
  MaxPooling2D: 'MaxPool2d',
  AveragePooling2D: 'AvgPool2d',
  GlobalAveragePooling2D: 'AdaptiveAvgPool2d',
  Flatten: 'Flatten',
  Dense: 'Linear',
  Dropout: 'Dropout',
  SeededDropout: 'Dropout',
  BatchNormalization: 'BatchNorm2d',
  LogSoftmax: 'LogSoftmax',
};

export interface LayerRow {
  /** e.g. "Conv2d-1" */
  name: string;
  type: string;
  /** PyTorch order: [-1, C, H, W] or [-1, F]. */
  outputShape: number[];
  params: number;
  layer: tf.layers.Layer;
}

export interface ModelSummary {
  rows: LayerRow[];
  inputShape: number[];
  totalParams: number;
  trainableParams: number;
  nonTrainableParams: number;
  inputSizeMB: number;
  forwardBackwardSizeMB: number;
  paramsSizeMB: number;
  totalSizeMB: number;
}

/** NHWC (tfjs) → NCHW (PyTorch), batch shown as -1. */
export function torchShape(shape: (number | null)[]): number[] {
  const dims = shape.map((d) => d ?? -1);
  if (dims.length === 4) return [dims[0], dims[3], dims[1], dims[2]];
  return dims;
}

const MB = 1024 * 1024;
const size = (shape: number[]) => shape.slice(1).reduce((a, b) => a * b, 1);

export function summarize(model: tf.LayersModel): ModelSummary {
  const rows: LayerRow[] = model.layers.map((layer, i) => {
    const type = TORCH_NAMES[layer.getClassName()] ?? layer.getClassName();
    const params = layer.trainableWeights.reduce((n, w) => n + size([1, ...(w.shape as number[])]), 0);
    return { name: `${type}-${i + 1}`, type, outputShape: torchShape(layer.outputShape as number[]), params, layer };
  });
  const frozen = model.layers.flatMap((l) => l.nonTrainableWeights)
    .filter((w) => !/moving_(mean|variance)/.test(w.originalName));
  const trainableParams = rows.reduce((n, r) => n + r.params, 0);
  const nonTrainableParams = frozen.reduce((n, w) => n + size([1, ...(w.shape as number[])]), 0);
  const totalParams = trainableParams + nonTrainableParams;
  const inputShape = torchShape(model.inputs[0].shape);
  // As torchsummary: batch of one, float32, activations counted twice (forward + gradient).
  const inputSizeMB = (size(inputShape) * 4) / MB;
  const forwardBackwardSizeMB = (2 * rows.reduce((n, r) => n + size(r.outputShape), 0) * 4) / MB;
  const paramsSizeMB = (totalParams * 4) / MB;
  return {
    rows, inputShape, totalParams, trainableParams, nonTrainableParams,
    inputSizeMB, forwardBackwardSizeMB, paramsSizeMB,
    totalSizeMB: inputSizeMB + forwardBackwardSizeMB + paramsSizeMB,
  };
}

const thousands = (n: number) => n.toLocaleString('en-US');

/** The text torchsummary prints. */
export function formatSummary(s: ModelSummary): string {
  const rule = '-'.repeat(64);
  const lines = [
    rule,
    `${'Layer (type)'.padStart(20)}  ${'Output Shape'.padStart(25)} ${'Param #'.padStart(15)}`,
    '='.repeat(64),
    ...s.rows.map((r) =>
      `${r.name.padStart(20)}  ${`[${r.outputShape.join(', ')}]`.padStart(25)} ${thousands(r.params).padStart(15)}`),
    '='.repeat(64),
    `Total params: ${thousands(s.totalParams)}`,
    `Trainable params: ${thousands(s.trainableParams)}`,
    `Non-trainable params: ${thousands(s.nonTrainableParams)}`,
    rule,
    `Input size (MB): ${s.inputSizeMB.toFixed(2)}`,
    `Forward/backward pass size (MB): ${s.forwardBackwardSizeMB.toFixed(2)}`,
    `Params size (MB): ${s.paramsSizeMB.toFixed(2)}`,
    `Estimated Total Size (MB): ${s.totalSizeMB.toFixed(2)}`,
    rule,
  ];
  return lines.join('\n');
}
