/**
 * A convolution with its bias on webgpu: tfjs-webgpu's fused convolution adds the bias as it
 * writes the output (one dispatch; conv2d then add is two). Its gradient is registered here
 * rather than taken from tf.fused.conv2d, whose gradient computes the input's gradient even
 * for the first layer (whose input is the data): this one computes only what backprop asks for.
 */
import * as tf from '@tensorflow/tfjs';

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
    return {
      x: () => run('Conv2DBackpropInput', { dy: dy as tf.Tensor, filter }, { inputShape: x.shape }),
      filter: () => run('Conv2DBackpropFilter', { x, dy: dy as tf.Tensor }, { filterShape: filter.shape }),
      bias: () => tf.sum(dy as tf.Tensor, [0, 1, 2]),
    };
  },
});

/** conv2d(x, filter) + bias, NHWC, dilation 1, on webgpu: one dispatch forward. */
export function conv2dBiasOnWebgpu(x: tf.Tensor4D, filter: tf.Tensor4D, bias: tf.Tensor1D, strides: number, pad: 'same' | 'valid'): tf.Tensor4D {
  return tf.engine().runKernel(CONV2D_BIAS, { x, filter, bias }, { strides, pad } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}
