/**
 * Kernels written in JavaScript over a tensor's values, for the wasm and cpu backends:
 * on wasm they read and write in place in the wasm memory (no copy), on cpu the
 * backend's arrays. Registered as tfjs kernels, so tf.profile times them by name and
 * tfjs's gradient registry applies; a backend without them (tensorflow) uses ops instead.
 */
import * as tf from '@tensorflow/tfjs';
import type { WasmBackend } from './wasm/simd-kernels';

/** The backends JavaScript kernels are registered for. */
export const JS_KERNEL_BACKENDS = ['wasm', 'cpu'] as const;

export type JsKernelArgs = { inputs: Record<string, tf.TensorInfo>; attrs: tf.NamedAttrMap };

interface CpuBackend {
  readSync(id: object): Float32Array;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}

/**
 * Registers a float32 kernel under `name`: `outShapes` gives its outputs' shapes, and
 * `compute` fills the outputs (fresh arrays) from the named inputs' values.
 */
export function registerJsKernel(name: string, inputNames: string[], outShapes: (args: JsKernelArgs) => number[][],
  compute: (ins: Float32Array[], outs: Float32Array[], args: JsKernelArgs) => void): void {
  const kernelFunc = (({ inputs, attrs, backend }: JsKernelArgs & { backend: tf.KernelBackend }) => {
    const args = { inputs, attrs };
    const shapes = outShapes(args);
    if (tf.getBackend() === 'wasm') {
      const wasm = backend as unknown as WasmBackend;
      const outs = shapes.map((shape) => wasm.makeOutput(shape, 'float32'));
      // Views only after every allocation: an allocation can grow (and detach) the memory.
      compute(inputNames.map((n) => wasm.typedArrayFromHeap(inputs[n])), outs.map((o) => wasm.typedArrayFromHeap(o)), args);
      return outs.length === 1 ? outs[0] : outs;
    }
    const cpu = backend as unknown as CpuBackend;
    const outs = shapes.map((shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)));
    compute(inputNames.map((n) => cpu.readSync(inputs[n].dataId)), outs, args);
    const infos = outs.map((values, i) => cpu.makeTensorInfo(shapes[i], 'float32', values));
    return infos.length === 1 ? infos[0] : infos;
  }) as unknown as tf.KernelFunc;
  for (const backendName of JS_KERNEL_BACKENDS) tf.registerKernel({ kernelName: name, backendName, kernelFunc });
}

/** Whether a JavaScript kernel runs on the current backend. */
export function hasJsKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}
