/**
 * The assignment's `Net`:
 *   conv 1→32 5x5 pad 2, ReLU, maxpool 2 → conv 32→64 5x5 pad 2, ReLU, maxpool 2
 *   → flatten 7·7·64 = 3136 → fc 1024, ReLU, dropout 0.5 → fc 10 → log-softmax.
 * 3,274,634 parameters. And the Net of pytorch/examples' mnist/main.py, the exercise code the
 * assignment starts from:
 *   conv 1→32 3x3, ReLU → conv 32→64 3x3, ReLU → maxpool 2 → dropout 0.25
 *   → flatten 12·12·64 = 9216 → fc 128, ReLU, dropout 0.5 → fc 10 → log-softmax.
 * 1,199,882 parameters. Tensors are NHWC (TensorFlow.js); summaries print NCHW.
 */
import * as tf from '@tensorflow/tfjs';
import { Conv2d, InitSeeds, LogSoftmax, SeededDropout } from './layers';

export function buildNet(seeds: InitSeeds): tf.Sequential {
  const model = tf.sequential({ name: 'Net' });
  model.add(new Conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 5, padding: 'same', ...seeds.torchDefault(5 * 5 * 1) }));
  model.add(tf.layers.reLU());
  model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  model.add(new Conv2d({ filters: 64, kernelSize: 5, padding: 'same', ...seeds.torchDefault(5 * 5 * 32) }));
  model.add(tf.layers.reLU());
  model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 1024, ...seeds.torchDefault(3136) }));
  model.add(tf.layers.reLU());
  model.add(new SeededDropout({ rate: 0.5 }));
  model.add(tf.layers.dense({ units: 10, ...seeds.torchDefault(1024) }));
  model.add(new LogSoftmax({}));
  return model;
}

export function buildPytorchExampleNet(seeds: InitSeeds): tf.Sequential {
  const model = tf.sequential({ name: 'PytorchExampleNet' });
  model.add(new Conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, padding: 'valid', ...seeds.torchDefault(3 * 3 * 1) }));
  model.add(tf.layers.reLU());
  model.add(new Conv2d({ filters: 64, kernelSize: 3, padding: 'valid', ...seeds.torchDefault(3 * 3 * 32) }));
  model.add(tf.layers.reLU());
  model.add(tf.layers.maxPooling2d({ poolSize: 2, strides: 2 }));
  model.add(new SeededDropout({ rate: 0.25 }));
  model.add(tf.layers.flatten());
  model.add(tf.layers.dense({ units: 128, ...seeds.torchDefault(9216) }));
  model.add(tf.layers.reLU());
  model.add(new SeededDropout({ rate: 0.5 }));
  model.add(tf.layers.dense({ units: 10, ...seeds.torchDefault(128) }));
  model.add(new LogSoftmax({}));
  return model;
}
