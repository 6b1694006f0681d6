import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MNIST_FILES } from '../../lib/data/mnist-files';
import { findPeerPython, runPeer } from '../../lib/bench-peer';
import { createModel, MODEL_NAMES } from '../../lib/models';
import { summarize } from '../../lib/models/summary';
import { runCli, tmpDir, writeDataFolder } from '../helpers';

function assertUserError(args: string[], pattern: RegExp): void {
  const r = runCli('train', args);
  assert.notEqual(r.status, 0, `exit status for ${args.join(' ')}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
}

describe('train CLI: bad input gets a clear error and a non-zero exit', () => {
  it('--epochs 0', () => assertUserError(['--epochs', '0'], /option '--epochs <n>' argument '0' is invalid\. expected a positive integer/));
  it('--batch-size -1', () => assertUserError(['--batch-size', '-1'], /--batch-size <n>' argument '-1' is invalid\. expected a positive integer/));
  it('an unknown --backend', () => assertUserError(['--backend', 'metal'], /argument 'metal' is invalid\. Allowed choices are auto, tensorflow, webgpu, wasm, cpu/));
  it('a missing data folder', () => assertUserError(['--data', '/nonexistent/mnist'], /^error: \/nonexistent\/mnist: data folder does not exist/m));
  it('a corrupted data file', () => {
    const dir = writeDataFolder(tmpDir());
    const file = path.join(dir, MNIST_FILES.trainImages);
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 1000));
    assertUserError(['--data', dir, '--backend', 'wasm'], new RegExp(`error: ${file}: truncated: header says 40x28x28`));
  });
  it('--resume of a folder that is not a run', () => assertUserError(['--resume', tmpDir()], /not a run folder \(no config\.json\)/));

  it('npm run doctor names the backends, GPUs, CUDA libraries, cores, Chromium and Jupyter, with fixes', () => {
    const r = runCli('doctor', []);
    assert.match(r.stdout, /✓ backend wasm: wasm \(SIMD, 1 thread\)/);
    assert.match(r.stdout, /backend tensorflow \(tfjs-node-gpu\): /);
    assert.match(r.stdout, /CUDA\/cuDNN libraries for tfjs-node-gpu: /);
    assert.match(r.stdout, /✓ CPU cores: \d+/);
    assert.match(r.stdout, /Chromium \(PDF reports, the main job\): /);
    for (const line of r.stdout.split('\n').filter((l) => l.startsWith('✗'))) {
      assert.ok(r.stdout.includes(`${line}\n    fix: `), `no fix for: ${line}`);
    }
    const ready = /This machine can run the main job\./.test(r.stdout);
    assert.equal(r.status, ready ? 0 : 1);
  });

  it('--help explains the options', () => {
    const r = runCli('train', ['--help']);
    assert.equal(r.status, 0);
    for (const flag of ['--epochs', '--batch-size', '--test-batch-size', '--lr', '--gamma', '--optimizer', '--momentum', '--seed', '--limit', '--backend', '--data', '--download', '--resume']) {
      assert.ok(r.stdout.includes(flag), flag);
    }
  });

  it('trains from a data folder end to end (plain output when not a terminal)', () => {
    const out = tmpDir();
    const r = runCli('train', ['--data', writeDataFolder(tmpDir(), 64, 20), '--epochs', '1', '--batch-size', '32', '--out', out, '--backend', 'wasm']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Train Epoch: 1 \[0\/64 \(0%\)\]/);
    assert.match(r.stdout, /Test set: Average loss: .*Accuracy: \d+\/20 /);
    assert.doesNotMatch(r.stdout, /\u001b\[/, 'no terminal escape codes in a log');
    assert.ok(fs.existsSync(path.join(out, 'last.ckpt')));
  });
});

describe('bench --model all (small steps: the code path, not the speed)', () => {
  it('measures every model of the zoo on 1 and 2 threads and prints a table and one JSON line with each', () => {
    // --peer with a Python that cannot run: said on one line, the table is still made.
    const r = runCli('bench', ['--model', 'all', '--batch-size', '8', '--steps', '1', '--warmup-seconds', '0', '--compute-threads', '2', '--backend', 'wasm', '--json', '--peer'],
      { MNIST_LAB_PEER_PYTHON: '/nonexistent/python3' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /PyTorch peer: not measured: no Python here imports torch \(\/nonexistent\/python3: .*\); install Debian's python3-torch and libopenblas0-pthread/);
    const json = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { compute_threads: number; peer: unknown; models: Record<string, Record<string, number & Record<string, number>>> };
    assert.equal(json.compute_threads, 2);
    assert.equal(json.peer, null);
    assert.deepEqual(Object.keys(json.models), ['net', 'pytorch-example', 'fc', 'cnn-small', 'base-14k', 'bn-14k', 'gap-8k', 'gap-14k', 'bn-10k']);
    for (const [name, m] of Object.entries(json.models)) {
      for (const k of ['train_samples_per_s_1_thread', 'train_samples_per_s', 'infer_samples_per_s']) assert.ok(m[k] > 0, `${name} ${k}`);
      assert.ok(Object.keys(m.top_kernels_ms).length > 0, `${name} kernels`);
      assert.ok(Number.isInteger(m.kernel_calls_per_step) && m.kernel_calls_per_step >= Object.keys(m.top_kernels_ms).length, `${name} kernel calls`);
    }
    assert.equal(json.models.net.parameters, 3274634);
    assert.match(r.stdout, /model +params +train 1 thr +train 2 thr +ratio +default +infer/);
    assert.equal(json.models.fc.default_compute_threads, 1, 'fc trains on one thread by default');
    assert.match(r.stdout, /\nbn-14k +[\d,]+ +\d+ +\d+ +\d+\.\d\d +\d +\d+ {2}\w+ /);
  });

  it('--peer goes with --model all only', () => {
    const r = runCli('bench', ['--model', 'fc', '--peer', '--skip-loader', '--warmup-seconds', '0', '--backend', 'wasm']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--peer goes with --model all/);
  });

  // PyTorch is for measuring only: installed here on purpose, never by the project or its CI.
  const peer = findPeerPython();
  it('the PyTorch peer (scripts/pytorch_peer.py) builds every zoo model with our parameter count and trains it',
    { skip: 'missing' in peer ? `PyTorch not installed, peer not checked: ${peer.missing}` : false }, () => {
      if (!('python' in peer)) return;
      for (const name of MODEL_NAMES) {
        const ours = createModel(name, 1);
        const torch = runPeer(peer.python, name, { threads: 1, batchSize: 8, steps: 1 });
        assert.equal(torch.parameters, summarize(ours).totalParams, name);
        assert.ok(torch.train_samples_per_s > 0 && torch.threads === 1, name);
        ours.dispose();
      }
    });
});

