/**
 * Own WGSL kernels on tfjs's WebGPU backend: a compute shader dispatched into the backend's
 * own command encoder, in order with its kernels, on the tensors' own GPU buffers.
 *
 * tfjs's WebGPUProgram gives a shader one output buffer and binds every input read-only;
 * a fused step that writes several tensors (an optimizer's value and both running averages)
 * needs its own bindings. The backend's fields used here are those of
 * @tensorflow/tfjs-backend-webgpu 4.22 (pinned in package.json), not its public typings.
 *
 * Every dispatch on the backend, tfjs's and ours, is counted (`dispatchCount`): `bench`
 * reports dispatches per training step, the figure a GPU step's fixed cost follows.
 */
import * as tf from '@tensorflow/tfjs';

/* Minimal WebGPU shapes (the globals Dawn installs); @webgpu/types is not a dependency. */
interface GpuBuffer { size: number }
interface GpuPipeline { getBindGroupLayout(i: number): unknown }
interface GpuPass {
  setPipeline(p: GpuPipeline): void; setBindGroup(i: number, g: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void; end(): void;
}
interface GpuDevice {
  createShaderModule(d: { code: string }): unknown;
  createComputePipeline(d: { layout: 'auto'; compute: { module: unknown; entryPoint: string } }): GpuPipeline;
  createBindGroup(d: { layout: unknown; entries: { binding: number; resource: unknown }[] }): unknown;
  createQuerySet(d: { type: 'timestamp'; count: number }): unknown;
  pushErrorScope(filter: 'validation'): void;
  popErrorScope(): Promise<{ message: string } | null>;
}
interface BufferUsage { STORAGE: number; COPY_SRC: number; COPY_DST: number; UNIFORM: number }

/** The parts of tfjs-backend-webgpu 4.22's WebGPUBackend an own kernel uses. */
export interface WebgpuBackend {
  device: GpuDevice;
  queue: { writeBuffer(b: GpuBuffer, offset: number, data: ArrayBuffer): void };
  tensorMap: { get(dataId: object): { resource?: unknown } | undefined };
  commandEncoder: { beginComputePass(d: object): GpuPass } | null;
  computePassEncoder: GpuPass | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  uniformPendingDisposal: GpuBuffer[];
  bufferManager: { acquireBuffer(size: number, usage: number): GpuBuffer };
  activeTimers: { name: string; query: Promise<number> }[] | null;
  supportTimestampQuery: boolean;
  querySet: unknown; querySetCount: number;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** Frees a tensor's buffer, or after the pending submit when a recorded dispatch still uses it. */
  disposeData(dataId: object): boolean;
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  getQueryTime(): Promise<number>;
  recordAndSubmit(...args: unknown[]): void;
}

/** The most workgroups a dispatch may have along one dimension (WebGPU's default limit). */
const MAX_PER_DIMENSION = 65535;

let dispatches = 0;
const counted = new WeakSet<object>();

/** The backend, with tfjs's own dispatches counted from now on. */
export function webgpuBackend(backend: tf.KernelBackend | object = tf.backend()): WebgpuBackend {
  const b = backend as unknown as WebgpuBackend;
  if (!counted.has(b)) {
    counted.add(b);
    const record = b.recordAndSubmit.bind(b);
    b.recordAndSubmit = (...args: unknown[]) => {
      dispatches++;
      record(...args);
    };
  }
  return b;
}

/** Dispatches recorded on the WebGPU backend so far in this process (tfjs's and ours). */
export function dispatchCount(): number {
  return dispatches;
}

/** What tfjs hands a kernel function. */
export type KernelArgs = { inputs: Record<string, tf.TensorInfo>; attrs: tf.NamedAttrMap; backend: tf.KernelBackend };

/** A kernel function as tfjs calls it. */
export type KernelFunc = (a: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];

/** Puts `make(tfjs's own)` in place of tfjs-backend-webgpu's kernel of that name. */
export function replaceWebgpuKernel(name: string, make: (tfjs: KernelFunc) => KernelFunc): void {
  const tfjs = tf.getKernel(name, 'webgpu')!.kernelFunc as unknown as KernelFunc;
  tf.unregisterKernel(name, 'webgpu'); // re-registering would warn on every start
  tf.registerKernel({ kernelName: name, backendName: 'webgpu', kernelFunc: make(tfjs) as unknown as tf.KernelFunc });
}

/** A kernel's uniform parameters, in the order its WGSL struct declares them: u32s, f32s, then u32s. */
export function uniformParams(u32s: number[], f32s: number[] = [], after: number[] = []): ArrayBuffer {
  const buffer = new ArrayBuffer(4 * (u32s.length + f32s.length + after.length));
  new Uint32Array(buffer, 0, u32s.length).set(u32s);
  new Float32Array(buffer, 4 * u32s.length, f32s.length).set(f32s);
  new Uint32Array(buffer, 4 * (u32s.length + f32s.length), after.length).set(after);
  return buffer;
}

/**
 * WGSL: `total(t, v)` sums one value from each of a workgroup's `size` threads (t: the thread's
 * local index) in a tree through workgroup memory and hands the sum to every thread. Call it
 * from every thread of the workgroup (it has barriers).
 */
export function workgroupTotal(size: number): string {
  return /* wgsl */ `
var<workgroup> part: array<f32, ${size}>;
fn total(t: u32, v: f32) -> f32 {
  part[t] = v;
  workgroupBarrier();
  for (var half = ${size / 2}u; half > 0u; half >>= 1u) {
    if (t < half) { part[t] += part[t + half]; }
    workgroupBarrier();
  }
  let s = part[0];
  workgroupBarrier();
  return s;
}`;
}

/** Workgroups for `invocations` threads in groups of `size`: x up to the limit, the rest in y. */
export function workgroupsFor(invocations: number, size: number): [number, number] {
  const groups = Math.max(1, Math.ceil(invocations / size));
  const x = Math.min(groups, MAX_PER_DIMENSION);
  return [x, Math.ceil(groups / x)];
}

/**
 * A compute shader with its bindings in order: the storage buffers the kernel lists, then one
 * uniform buffer of parameters (binding = number of storage buffers) when it has parameters.
 */
export class WgslKernel {
  private readonly pipelines = new WeakMap<GpuDevice, GpuPipeline>();
  /** Dawn's complaint about this shader, once known (it arrives asynchronously). */
  private failure?: string;

  constructor(readonly name: string, readonly code: string) {}

  private pipeline(device: GpuDevice): GpuPipeline {
    if (this.failure) throw new Error(`the lab's WGSL kernel ${this.name} does not compile on this device: ${this.failure}`);
    let p = this.pipelines.get(device);
    if (!p) {
      device.pushErrorScope('validation');
      p = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: this.code }), entryPoint: 'main' } });
      void device.popErrorScope().then((e) => { if (e) this.failure = e.message.split('\n').filter(Boolean).slice(0, 3).join(' '); });
      this.pipelines.set(device, p);
    }
    return p;
  }

  /**
   * Records one dispatch over `buffers` (each tensor's GPU buffer, uploaded first if it is
   * still on the CPU) with `params` as the uniform buffer, after everything tfjs recorded.
   */
  dispatch(backend: WebgpuBackend, buffers: tf.TensorInfo[], params: ArrayBuffer | null, workgroups: [number, number]): void {
    const usage = (globalThis as unknown as { GPUBufferUsage: BufferUsage }).GPUBufferUsage;
    const entries = buffers.map((t, binding) => {
      backend.uploadToGPU(t.dataId);
      backend.commandQueueOwnedIds.add(t.dataId); // its buffer is not reused before this submit
      return { binding, resource: { buffer: backend.tensorMap.get(t.dataId)!.resource } };
    });
    if (params) {
      const size = Math.ceil(params.byteLength / 16) * 16;
      const uniform = backend.bufferManager.acquireBuffer(size, usage.COPY_DST | usage.UNIFORM);
      backend.queue.writeBuffer(uniform, 0, params);
      backend.uniformPendingDisposal.push(uniform); // released by the backend at its next submit
      entries.push({ binding: buffers.length, resource: { buffer: uniform } });
    }
    const pipeline = this.pipeline(backend.device);
    const bindGroup = backend.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    backend.ensureCommandEncoderReady();
    // Under tf.profile, each dispatch gets a pass of its own with timestamps, as tfjs's do.
    const timed = backend.activeTimers != null;
    if (timed) {
      backend.endComputePassEncoder();
      const descriptor: Record<string, unknown> = {};
      if (backend.supportTimestampQuery) {
        backend.querySet ??= backend.device.createQuerySet({ type: 'timestamp', count: backend.querySetCount });
        descriptor.timestampWrites = { querySet: backend.querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
      }
      backend.computePassEncoder = backend.commandEncoder!.beginComputePass(descriptor);
    } else {
      backend.computePassEncoder ??= backend.commandEncoder!.beginComputePass({});
    }
    const pass = backend.computePassEncoder;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(workgroups[0], workgroups[1], 1);
    dispatches++;
    backend.dispatchCountInPass++;
    if (timed) {
      backend.endComputePassEncoder();
      backend.activeTimers!.push({ name: this.name, query: backend.getQueryTime() });
    } else if (Number(tf.env().get('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) <= backend.dispatchCountInPass) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
  }
}
