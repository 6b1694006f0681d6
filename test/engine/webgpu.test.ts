/**
 * The webgpu backend (tfjs's WebGPU kernels and the lab's own, on Dawn) on whatever Vulkan device this machine
 * has: in CI, Mesa's lavapipe, a software device that `auto` must not pick and `--backend
 * webgpu` uses. Training on it gives the `cpu` backend's losses. Skipped, visibly, where Dawn
 * finds no Vulkan device at all.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { initBackend } from '../../lib/engine/backend';
import { runCli, tmpDir } from '../helpers';

/** What Dawn finds here, asked as the lab asks it (a child process; the test files load synchronously). */
const probe = JSON.parse(spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'lib', 'engine', 'webgpu', 'adapter.js'), '--probe'],
  { encoding: 'utf8', timeout: 60_000 }).stdout.trim().split('\n').pop() || '{"ok":false,"reason":"the probe printed nothing"}') as
  { ok: boolean; adapter?: { software: boolean }; reason?: string };
const skip = probe.ok ? false : `SKIPPED: no WebGPU adapter here (${probe.reason}); CI installs lavapipe: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1`;
if (skip) process.stdout.write(`# ${skip}\n`);

const TINY = ['--model', 'fc', '--limit', '64', '--batch-size', '16', '--test-batch-size', '500', '--epochs', '1', '--log-interval', '1', '--plain'];
const losses = (stdout: string) => [...stdout.matchAll(/Loss: ([\d.]+)/g)].map((m) => Number(m[1]));

describe('the webgpu backend', { skip }, () => {
  it('auto uses a hardware adapter only, and says why it passed over a software one', async () => {
    const info = await initBackend('auto');
    if (probe.adapter!.software) {
      assert.notEqual(info.name, 'webgpu');
      assert.match(info.line, /webgpu: only .+ \(a software adapter: the CPU, not a GPU\), which auto does not use \(--backend webgpu does\)/);
    } else {
      assert.equal(info.name, 'webgpu');
    }
    await initBackend('wasm');
  });

  it('--backend webgpu trains to the cpu backend\'s losses, names its adapter in the backend line and config.json, and resumes', () => {
    const out = path.join(tmpDir('webgpu-'), 'run');
    const gpu = runCli('train', [...TINY, '--backend', 'webgpu', '--out', out]);
    assert.equal(gpu.status, 0, gpu.stderr);
    assert.match(gpu.stdout, /^Backend: webgpu — webgpu on .+ \(Dawn, Vulkan; tfjs's WebGPU kernels and the lab's own WGSL ones\) \(requested with --backend\)$/m);
    const cpu = runCli('train', [...TINY, '--backend', 'cpu', '--compute-threads', '1', '--out', path.join(tmpDir('webgpu-cpu-'), 'run')]);
    assert.equal(cpu.status, 0, cpu.stderr);
    const [a, b] = [losses(gpu.stdout), losses(cpu.stdout)];
    assert.equal(a.length, 4, gpu.stdout);
    a.forEach((loss, i) => assert.ok(Math.abs(loss - b[i]) < 1e-4, `batch ${i}: webgpu ${loss}, cpu ${b[i]}`));
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.equal(config.backend, 'webgpu');
    assert.equal(config.compute_threads, 1);
    assert.equal(typeof config.adapter.vendor, 'string');
    assert.equal(config.adapter.software, probe.adapter!.software);
    const resumed = runCli('train', ['--resume', out, '--epochs', '2', '--plain']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length, 2);
  });

  it('a loss that stops being finite stops the run at its batch, though the loss is read a step late on a GPU', () => {
    const out = path.join(tmpDir('webgpu-diverged-'), 'run');
    const run = runCli('train', [...TINY, '--backend', 'webgpu', '--lr', '1e30', '--out', out]);
    assert.notEqual(run.status, 0, run.stdout);
    const m = /the training loss became (NaN|-?Infinity) at epoch 1, batch (\d+) \(lr 1e\+30\): training cannot go on/.exec(run.stderr);
    assert.ok(m, run.stderr);
    const logged = losses(run.stdout);
    assert.equal(logged.length, Number(m[2]), `every batch before it is logged (--log-interval 1): ${run.stdout}`);
    assert.ok(logged.every(Number.isFinite));
  });

  it('more than one compute thread on webgpu is refused, naming why', () => {
    const r = runCli('train', [...TINY, '--backend', 'webgpu', '--compute-threads', '2', '--out', path.join(tmpDir('webgpu-threads-'), 'run')]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--compute-threads 2: the webgpu backend computes on the GPU, driven by one thread/);
  });

  it('npm run doctor names the adapter', () => {
    const r = runCli('doctor', []);
    assert.match(r.stdout, /backend webgpu \(a GPU through Dawn and Vulkan\): .*(auto uses it|auto does not use it; --backend webgpu does)/);
  });
});
