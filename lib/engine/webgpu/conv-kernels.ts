/**
 * A convolution with its bias on webgpu: tfjs-webgpu's fused convolution adds the bias as it
 * writes the output (one dispatch; conv2d then add is two). Its gradient is registered here
 * rather than taken from tf.fused.conv2d, whose gradient computes the input's gradient even
 * for the first layer (whose input is the data): this one computes the input's gradient only
 * when backprop asks for it, and the filter's and the bias's in one tiled kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { CONV2D_BACKPROP_FILTER_BIAS } from './conv-filter-grad';

export const CONV2D_BIAS = 'Conv2dBias';

interface ConvAttrs { strides: number; pad: 'same' | 'valid' }

tf.registerKernel({
  kernelName: CONV2D_BIAS,
  backendName: 'webgpu',
  kernelFunc: ({ inputs, attrs, backend }) => {
    const { strides, pad } = attrs as unknown as ConvAttrs;
    const fused = tf.getKernel('FusedConv2D', 'webgpu')!.kernelFunc;
    return fused({ inputs, backend, attrs: { strides, pad, dataFormat: 'NHWC', dilations: 1, activation: 'linear' } });
  },
});

tf.registerGradient({
  kernelName: CONV2D_BIAS,
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved;
    const { strides, pad } = attrs as unknown as ConvAttrs;
    const common = { strides, pad, dataFormat: 'NHWC' };
    const run = (name: string, inputs: tf.NamedTensorMap, more: object) =>
      tf.engine().runKernel(name, inputs, { ...common, ...more } as unknown as tf.NamedAttrMap) as tf.Tensor;
    // The filter's and the bias's gradients come out of one kernel (conv-filter-grad.ts), made
    // here rather than in either closure: the tape runs each closure in a tidy of its own,
    // which would dispose the other's tensor. Made here, the backward pass's scope owns both.
    const [dFilter, dBias] = tf.engine().runKernel(CONV2D_BACKPROP_FILTER_BIAS, { x, dy: dy as tf.Tensor },
      { ...common, filterShape: filter.shape } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    return {
      x: () => run('Conv2DBackpropInput', { dy: dy as tf.Tensor, filter }, { inputShape: x.shape }),
      filter: () => dFilter,
      bias: () => dBias,
    };
  },
});

/** conv2d(x, filter) + bias, NHWC, dilation 1, on webgpu: one dispatch forward. */
export function conv2dBiasOnWebgpu(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, strides: number, pad: 'same' | 'valid'): tf.Tensor4D {
  return tf.engine().runKernel(CONV2D_BIAS, { x, filter, bias }, { strides, pad } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
