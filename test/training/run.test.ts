import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { loadCheckpoint } from '../../lib/training/checkpoint';
import { setProfiling } from '../../lib/profiling';
import { memoryProgress } from '../../lib/training/progress';
import type { EpochMetrics } from '../../lib/runs/run-folder';
import { DEFAULTS, TrainOptions } from '../../lib/training/options';
import { runTraining } from '../../lib/training/run';
import { runCli, tmpDir } from '../helpers';

// Tiny runs on the embedded digits: 256 training samples, 4 steps of 64 per epoch.
const tiny = (out: string, extra: Partial<TrainOptions> = {}): TrainOptions =>
  ({ ...DEFAULTS, backend: 'wasm', epochs: 2, limit: 256, logInterval: 2, out, ...extra });

const readMetrics = (dir: string): EpochMetrics[] =>
  fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('training', () => {
  const lines: string[] = [];
  let first: Awaited<ReturnType<typeof runTraining>>;

  it('prints the reference output and writes the run folder', async () => {
    first = await runTraining(tiny(tmpDir()), memoryProgress(lines));
    const text = lines.join('\n');
    assert.match(text, /^Backend: wasm — /m);
    assert.match(text, /Total params: 3,274,634/);
    assert.match(text, /^Train Epoch: 1 \[0\/256 \(0%\)\]\tLoss: \d\.\d{6}$/m);
    assert.match(text, /^Train Epoch: 2 \[128\/256 \(50%\)\]\tLoss: \d\.\d{6}$/m);
    assert.match(text, /^Test set: Average loss: \d\.\d{4}, Accuracy: \d+\/2000 \(\d+\.\d\d%\)$/m);
    assert.match(text, /NOT the official MNIST test set/);
    const { outDir } = first;
    for (const f of ['config.json', 'metrics.jsonl', 'batches.jsonl', 'last.ckpt', 'best.ckpt']) assert.ok(fs.existsSync(path.join(outDir, f)), f);
    const batches = fs.readFileSync(path.join(outDir, 'batches.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(batches.map((b) => [b.epoch, b.batch, b.samples]), [[1, 0, 0], [1, 2, 128], [2, 0, 0], [2, 2, 128]]);
    const metrics = readMetrics(outDir);
    assert.deepEqual(metrics.map((m) => m.epoch), [1, 2]);
    for (const key of ['train_loss', 'test_loss', 'test_accuracy', 'train_seconds', 'samples_per_second']) {
      assert.equal(typeof metrics[0][key as keyof EpochMetrics], 'number', key);
    }
    assert.equal(metrics[0].backend, 'wasm');
    const config = JSON.parse(fs.readFileSync(path.join(outDir, 'config.json'), 'utf8'));
    assert.equal(config.machine.cpus, (await import('node:os')).availableParallelism());
    assert.equal(config.versions['@tensorflow/tfjs'], '4.22.0');
    assert.match(config.backend_line, /^Backend: wasm/);
    assert.equal(metrics[1].lr, 0.7);
    // Even 8 steps of Adadelta at lr 1.0 learn something (chance is 10%).
    assert.ok(metrics[1].test_accuracy > 30, `accuracy ${metrics[1].test_accuracy}`);
    const ckpt = loadCheckpoint(path.join(outDir, 'last.ckpt'));
    assert.equal(ckpt.epoch, 2);
    assert.equal(ckpt.weights.length, 8);
    assert.equal(ckpt.optimizer.length, 1 + 2 * 8); // iterations + two Adadelta slots per weight
  });

  it('keeps the tensor count flat from epoch to epoch (no leaks)', () => {
    const [a, b] = first.metrics;
    assert.equal(a.num_tensors, b.num_tensors);
  });

  it('gives the same losses for the same seed', async () => {
    const again = await runTraining(tiny(tmpDir()), memoryProgress([]));
    assert.deepEqual(again.metrics.map((m) => [m.train_loss, m.test_loss]), first.metrics.map((m) => [m.train_loss, m.test_loss]));
    const other = await runTraining(tiny(tmpDir(), { seed: 2, epochs: 1 }), memoryProgress([]));
    assert.notEqual(other.metrics[0].train_loss, first.metrics[0].train_loss);
  });

  it('line-profiles the training loop with --profile: loop header hits, totals equal to the epoch time', async () => {
    const dir = tmpDir();
    const out: string[] = [];
    const run = await runTraining(tiny(dir, { profile: true, workers: 2 }), memoryProgress(out));
    setProfiling(false);
    const text = fs.readFileSync(path.join(dir, 'line-profile.txt'), 'utf8');
    assert.match(text, /^Timer unit: 1e-06 s\n\nTotal time: [\d.]+ s\nFile: lib\/training\/epoch\.ts\nFunction: trainEpoch at line \d+\n/);
    assert.match(text, /\nTotal time: [\d.]+ s\nFile: lib\/training\/step\.ts\nFunction: trainStep at line \d+\n/);
    // 2 epochs of 4 batches: the header is hit 5 times per epoch.
    assert.match(text, /\n +\d+ +10 +[\d.]+ +[\d.]+ +[\d.]+ +for await \(const batch of loader\) \{/);
    assert.match(text, /\n +\d+ +8 +[\d.]+ +[\d.]+ +[\d.]+ +s\.optimizer\.applyGradients\(grads\);/);
    const rows = JSON.parse(fs.readFileSync(path.join(dir, 'line-profile.json'), 'utf8')) as
      { epoch: number; workers: number; time_s: number; function: string; tag: string; contents: string }[];
    for (const m of run.metrics) {
      // The epoch loop's lines add up to the epoch (the step's lines are inside its step line).
      const lineTotal = rows.filter((r) => r.epoch === m.epoch && r.function === 'trainEpoch').reduce((n, r) => n + r.time_s, 0);
      assert.ok(Math.abs(lineTotal - m.train_seconds) / m.train_seconds < 0.05, `epoch ${m.epoch}: lines ${lineTotal} s vs measured ${m.train_seconds} s`);
    }
    // The rows say what each line is: the wait for data, the step, and the step's phases.
    const tagOf = (contents: RegExp) => rows.find((r) => contents.test(r.contents))?.tag;
    assert.equal(tagOf(/^for await \(const batch of loader\)/), 'data');
    assert.equal(tagOf(/^const loss = await trainStep\(/), 'step');
    assert.equal(tagOf(/s\.model\.apply\(data/), 'forward');
    assert.equal(tagOf(/^s\.optimizer\.applyGradients/), 'optimizer');
    assert.equal(tagOf(/^const \{ loss, grads \} = await s\.reducer\.allReduce/), 'allreduce');
    assert.ok(rows.every((r) => r.workers === 2));
    assert.match(out.join('\n'), /DataLoader: 2 workers/);
  });

  it('removes its signal handlers even when the run fails', async () => {
    const before = ['SIGINT', 'SIGTERM', 'SIGUSR1'].map((sig) => process.listenerCount(sig));
    await assert.rejects(runTraining(tiny(tmpDir(), { data: '/nonexistent/mnist' }), memoryProgress([])), /data folder does not exist/);
    assert.deepEqual(['SIGINT', 'SIGTERM', 'SIGUSR1'].map((sig) => process.listenerCount(sig)), before);
  });

  it('resumes from the last checkpoint with the result of an uninterrupted run', async () => {
    const dir = tmpDir();
    await runTraining(tiny(dir, { epochs: 1 }), memoryProgress([]));
    const out: string[] = [];
    const resumed = await runTraining({ ...tiny(dir), resume: dir, epochs: 2 }, memoryProgress(out));
    assert.match(out.join('\n'), /Resuming .* from epoch 2 \(last\.ckpt holds epoch 1\)/);
    assert.deepEqual(resumed.metrics.map((m) => m.epoch), [1, 2]);
    assert.deepEqual(readMetrics(dir).map((m) => [m.epoch, m.train_loss, m.test_loss]),
      first.metrics.map((m) => [m.epoch, m.train_loss, m.test_loss]));
  });

  it('a profiled run stopped by a signal and resumed has a line profile of every epoch', async () => {
    const dir = path.join(tmpDir(), 'profiled');
    const args = ['--epochs', '2', '--limit', '640', '--compute-threads', '1', '--profile', '--plain', '--backend', 'wasm'];
    const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'train.js'), ...args, '--out', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b) => (output += b));
    const closed = new Promise((r) => child.on('close', r));
    // Stop it in epoch 2, once epoch 1 is saved.
    for (let i = 0; i < 1200 && !/Train Epoch: 2 \[/.test(output); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGUSR1');
    assert.equal(await closed, 3, output);
    assert.match(output, /Stopped by SIGUSR1 during epoch 2: last\.ckpt holds epoch 1/);
    const resumed = runCli('train', ['--resume', dir, '--plain']);
    assert.equal(resumed.status, 0, resumed.stderr);
    const rows = JSON.parse(fs.readFileSync(path.join(dir, 'line-profile.json'), 'utf8')) as { epoch: number; tag: string; hits: number }[];
    assert.deepEqual([...new Set(rows.map((r) => r.epoch))].sort(), [1, 2], 'both epochs profiled');
    // 10 batches an epoch: the wait for data is hit 11 times in each.
    assert.deepEqual(rows.filter((r) => r.tag === 'data').map((r) => [r.epoch, r.hits]), [[1, 11], [2, 11]]);
    assert.match(fs.readFileSync(path.join(dir, 'line-profile.txt'), 'utf8'), /\n +\d+ +22 +[\d.]+ +[\d.]+ +[\d.]+ +for await \(const batch of loader\)/);
  });
});
