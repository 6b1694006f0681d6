/**
 * The WebGPU backend: TensorFlow.js's own WebGPU kernels (@tensorflow/tfjs-backend-webgpu) on
 * Dawn, Chrome's WebGPU implementation, as the npm package `webgpu` ships it for Node (a
 * prebuilt dawn.node; no CUDA toolkit, no download outside npm). Dawn drives the GPU through
 * Vulkan: it needs the Vulkan loader (libvulkan.so.1) and the GPU driver's Vulkan ICD (NVIDIA's
 * is in libGLX_nvidia.so.0, which needs libglvnd). Without a GPU, Mesa's lavapipe (25 or later)
 * is a software Vulkan device Dawn accepts: `auto` never picks it, `--backend webgpu` does.
 *
 * The probe says exactly what was found or what is missing, for the backend line, config.json
 * and `npm run doctor`.
 */
import { execFile } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import { isInstalled } from '../../util/packages';
import { webgpuBackend } from './dispatch';
import { installBackwardKernels } from './backward-kernels';
import { installFilterGradientKernels } from './conv-filter-grad';
import './batch-norm-kernels'; // engine/batch-norm.ts's kernels for webgpu

/** The adapter Dawn offers, as GPUAdapterInfo describes it. */
export interface GpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A software adapter (lavapipe, SwiftShader): WebGPU on the CPU, for tests. */
  software: boolean;
}

/** What Dawn found: an adapter, or why there is none. */
export type WebgpuProbe = { ok: true; adapter: GpuAdapter } | { ok: false; reason: string };

/** Dawn loaded in this process, with its adapter. */
type Loaded = { ok: true; adapter: GpuAdapter; gpu: unknown; globals: Record<string, unknown> };

interface Dawn { create(flags: string[]): { requestAdapter(o?: object): Promise<DawnAdapter | null> }; globals: Record<string, unknown> }
interface DawnAdapter { info?: Partial<GpuAdapter> & { isFallbackAdapter?: boolean }; isFallbackAdapter?: boolean }

const MISSING_LOADER = 'the Vulkan loader libvulkan.so.1 is missing (apt-get install libvulkan1)';
const NO_ADAPTER = 'Dawn found no Vulkan device: no GPU driver ICD is installed or visible (NVIDIA: the driver\'s ' +
  'libGLX_nvidia.so.0 with libglvnd0, and VK_DRIVER_FILES or /usr/share/vulkan/icd.d naming nvidia_icd.json; without a GPU, ' +
  'mesa-vulkan-drivers 25 or later, e.g. from Debian bookworm-backports, gives a software device for --backend webgpu)';

let probed: Promise<WebgpuProbe> | undefined;

/**
 * Asks Dawn for an adapter, once per process, in a child process: Dawn writes warnings of its own
 * to stderr (on lavapipe: "maxDynamic...BuffersPerPipelineLayout artificially reduced"), which
 * would stand before every message of a process that only wanted to know, and a driver that
 * crashes while probing takes only the child down.
 */
export function probeWebgpu(): Promise<WebgpuProbe> {
  probed ??= new Promise((resolve) => {
    execFile(process.execPath, [__filename, '--probe'], { encoding: 'utf8', timeout: 60_000 }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(line) as WebgpuProbe);
      } catch {
        const how = err ? ((err as { signal?: string }).signal ? `was killed by ${(err as { signal?: string }).signal}` : `failed (${err.message.split('\n')[0]})`) : 'printed nothing';
        resolve({ ok: false, reason: `probing Dawn for a Vulkan device ${how}` });
      }
    });
  });
  return probed;
}

/** Loads Dawn in this process and asks it for an adapter. */
async function loadDawn(): Promise<Loaded | Extract<WebgpuProbe, { ok: false }>> {
  for (const pkg of ['webgpu', '@tensorflow/tfjs-backend-webgpu']) {
    if (!isInstalled(pkg)) return { ok: false, reason: `${pkg} not installed (npm ci installs it)` };
  }
  let dawn: Dawn;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    dawn = require('webgpu') as Dawn; // an ES module: require(esm) loads it on Node 20.19+, 22.12+ and 24
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (/libvulkan\.so/.test(text)) return { ok: false, reason: MISSING_LOADER };
    return { ok: false, reason: `Dawn (npm webgpu) failed to load: ${text.split('\n')[0]}` };
  }
  let adapter: DawnAdapter | null;
  const gpu = dawn.create([]);
  try {
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    return { ok: false, reason: /vulkan/i.test(text) && /load|found|open/i.test(text) ? MISSING_LOADER : `Dawn could not open a device: ${text.split('\n')[0]}` };
  }
  if (!adapter) return { ok: false, reason: NO_ADAPTER };
  const info = adapter.info ?? {};
  const described: GpuAdapter = {
    vendor: info.vendor || 'unknown vendor', architecture: info.architecture || '', device: info.device || 'unknown device',
    description: info.description || '',
    software: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || info.architecture === 'software' || /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`),
  };
  return { ok: true, adapter: described, gpu, globals: dawn.globals };
}

/** One phrase for the adapter: vendor, device and driver, and whether it is software. */
export function describeAdapter(a: GpuAdapter): string {
  const driver = a.description && a.description !== a.device ? `, ${a.description}` : '';
  return `${a.vendor} ${a.device}${driver}${a.software ? ' (a software adapter: the CPU, not a GPU)' : ''}`;
}

/**
 * Makes Dawn's adapter the process's `navigator.gpu` and selects tfjs's WebGPU backend. Node 21+
 * has a read-only global navigator, so it is redefined rather than assigned.
 */
export async function useWebgpu(setBackend: (name: string) => Promise<boolean>): Promise<void> {
  const probe = await loadDawn();
  if (!probe.ok) throw new Error(probe.reason);
  for (const [key, value] of Object.entries(probe.globals)) {
    if (!(key in globalThis)) Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
  }
  // Node's own navigator keeps its values (read through its getters), with Dawn's gpu beside them.
  const node = (globalThis as { navigator?: Record<string, unknown> }).navigator;
  const kept = Object.fromEntries(['hardwareConcurrency', 'language', 'languages', 'platform', 'userAgent'].map((k) => [k, node?.[k]]));
  Object.defineProperty(globalThis, 'navigator', { value: { ...kept, gpu: probe.gpu }, configurable: true, writable: true });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('@tensorflow/tfjs-backend-webgpu'); // registers 'webgpu' now that navigator.gpu exists
  installBackwardKernels(); // over tfjs's own, so after them
  installFilterGradientKernels();
  if (!(await setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") returned false');
  webgpuBackend(tf.findBackend('webgpu')!); // its dispatches counted from the start (bench reports them per step)
}

// `node adapter.js --probe`: the child probeWebgpu starts; one JSON line on stdout.
if (require.main === module && process.argv[2] === '--probe') {
  void loadDawn().then((p) => {
    process.stdout.write(`${JSON.stringify(p.ok ? { ok: true, adapter: p.adapter } : p)}\n`);
    process.exit(0); // Dawn's instance would keep the process alive
  });
}
