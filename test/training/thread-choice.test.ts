/** The default compute threads: the CPU allotment, a machine's recorded thread sweep, the rule, and a loader study's share. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { chooseComputeThreads, type ComputeSplit, fastestLayout, readThreadSweeps, recordThreadSweep, studyComputeThreads, sweepQuestion, threadCounts, threadSweepsFile } from '../../lib/training/thread-choice';
import { cpuAllotment } from '../../lib/util/machine';
import { runCli, tmpDir } from '../helpers';

describe('compute threads by default', () => {
  it('takes the CPUs from Slurm, else from a cgroup quota below the CPUs it may run on', () => {
    const dir = tmpDir('cgroup-');
    const cpuMax = path.join(dir, 'cpu.max');
    fs.writeFileSync(cpuMax, '100000 100000\n');
    assert.deepEqual(cpuAllotment({ SLURM_CPUS_PER_TASK: '8' }, cpuMax), { cpus: 8, source: "Slurm's --cpus-per-task 8" });
    const quota = cpuAllotment({}, cpuMax);
    assert.equal(quota.cpus, 1);
    assert.match(quota.source, /the cgroup CPU quota \(1 CPUs/);
    fs.writeFileSync(cpuMax, 'max 100000\n');
    assert.match(cpuAllotment({}, cpuMax).source, /CPUs? this process may run on/);
    assert.match(cpuAllotment({}, path.join(dir, 'absent')).source, /CPUs? this process may run on/);
  });

  it('measures 1, 2, 4, ... and the CPUs; chooses the fewest threads within 3% of the fastest that fit', () => {
    assert.deepEqual(threadCounts(1), [1]);
    assert.deepEqual(threadCounts(2), [1, 2]);
    assert.deepEqual(threadCounts(6), [1, 2, 4, 6]);
    assert.deepEqual(threadCounts(16), [1, 2, 4, 8, 16]);
    assert.equal(fastestLayout({ batch: { 1: 3294, 2: 2512 } }, 2)?.threads, 1, 'slower on 2: stays on 1');
    assert.equal(fastestLayout({ batch: { 1: 400, 2: 640 } }, 2)?.threads, 2);
    assert.equal(fastestLayout({ batch: { 1: 1000, 2: 1020 } }, 2)?.threads, 1, '2% is noise');
    assert.equal(fastestLayout({ batch: { 1: 250, 4: 568, 8: 362, 16: 244 } }, 16)?.threads, 4, 'more threads that are slower are not taken');
    assert.equal(fastestLayout({ batch: { 1: 250, 4: 568, 8: 900 } }, 4)?.threads, 4, 'only counts within the allotment');
    assert.equal(fastestLayout({ batch: {} }, 4)?.threads, undefined);
    assert.deepEqual(fastestLayout({ batch: { 1: 250, 8: 362, 16: 244 }, ops: { 8: 2000, 16: 2050 } }, 16), { threads: 8, split: 'ops' });
    assert.deepEqual(fastestLayout({ batch: { 1: 1000, 2: 1500 }, ops: { 2: 1480 } }, 2), { threads: 2, split: 'batch' }, 'at the same count, the faster split');
    assert.deepEqual(fastestLayout({ batch: { 1: 1000 }, ops: { 2: 1010 } }, 2), { threads: 1, split: 'batch' });
  });

  it('follows this machine\'s recorded sweep for the same question, and the rule otherwise, saying which', () => {
    const cache = tmpDir('thread-cache-');
    const env = { MNIST_LAB_CACHE: cache, SLURM_CPUS_PER_TASK: '2' };
    const rule = chooseComputeThreads('wasm', env, 'gap-8k');
    assert.equal(rule.threads, 2);
    assert.match(rule.why, /one per CPU \(Slurm's --cpus-per-task 2\), at most 4; not measured here \(npm run bench -- --threads-sweep\)/);
    const file = threadSweepsFile(env)!;
    assert.equal(file, path.join(cache, 'thread-sweeps.json'));
    recordThreadSweep(file, { ...sweepQuestion('wasm', 64), model: 'gap-8k', measured_at: '2026-12-05T12:00:00.000Z', samples_per_s: { 1: 1542, 2: 1298 } });
    const measured = chooseComputeThreads('wasm', env, 'gap-8k');
    assert.equal(measured.threads, 1);
    assert.match(measured.why, /the fastest for gap-8k on 2 CPUs .* thread sweep of 2026-12-05 \(samples\/s by threads, data parallel: 1: 1,542, 2: 1,298/);
    assert.equal(chooseComputeThreads('wasm', env, 'gap-8k', 128).threads, 2, 'another batch size is another question');
    assert.equal(chooseComputeThreads('cpu', env, 'gap-8k').threads, 2, 'another backend too');
    assert.equal(chooseComputeThreads('webgpu', env, 'gap-8k').threads, 1);
    // A newer sweep replaces the old one for the same question; other models stay.
    recordThreadSweep(file, { ...sweepQuestion('wasm', 64), model: 'net', measured_at: '2026-12-05T12:01:00.000Z', samples_per_s: { 1: 300, 2: 500 } });
    recordThreadSweep(file, { ...sweepQuestion('wasm', 64), model: 'gap-8k', measured_at: '2026-12-05T12:02:00.000Z', samples_per_s: { 1: 1000, 2: 1500 } });
    assert.deepEqual(readThreadSweeps(file).map((r) => r.model).sort(), ['gap-8k', 'net']);
    assert.equal(chooseComputeThreads('wasm', env, 'gap-8k').threads, 2);
    // A sweep that measured split operations too: the faster split at the fewest threads near the best.
    recordThreadSweep(file, { ...sweepQuestion('wasm', 64), model: 'gap-8k', measured_at: '2026-12-05T12:03:00.000Z',
      samples_per_s: { 1: 1000, 2: 1500 }, ops_samples_per_s: { 2: 1700 } });
    const ops = chooseComputeThreads('wasm', env, 'gap-8k');
    assert.deepEqual([ops.threads, ops.split], [2, 'ops']);
    assert.match(ops.why, /data parallel: 1: 1,000, 2: 1,500; split operations: 2: 1,700/);
    const asked = chooseComputeThreads('wasm', env, 'gap-8k', 64, 'batch');
    assert.deepEqual([asked.threads, asked.split], [2, 'batch'], 'a split asked for: the fastest count of that split');
    assert.equal(chooseComputeThreads('wasm', env, 'net').split, 'batch', 'a sweep without split operations: data parallel');
    fs.writeFileSync(file, '{ damaged');
    assert.equal(chooseComputeThreads('wasm', env, 'gap-8k').threads, 2, 'a damaged cache is no measurement');
  });

  it('leaves a loader study\'s workers their CPUs: compute threads + the most workers within the allotment, at least 1', () => {
    const env = { SLURM_CPUS_PER_TASK: '8' };
    assert.equal(studyComputeThreads('wasm', env, 'net', [1, 2]).threads, 4);
    assert.match(studyComputeThreads('wasm', env, 'net', [1, 2]).why, /with 2 loader workers at most, 6 of 8 CPUs/);
    const eight = studyComputeThreads('wasm', env, 'net', [1, 8]);
    assert.equal(eight.threads, 1);
    assert.match(eight.why, /8 CPUs \(Slurm's --cpus-per-task 8\) less the 8 loader workers of the largest run, at least 1/);
    assert.equal(studyComputeThreads('wasm', { SLURM_CPUS_PER_TASK: '16' }, 'net', [1, 8]).threads, 4);
    assert.equal(studyComputeThreads('wasm', { SLURM_CPUS_PER_TASK: '10' }, 'net', [1, 8]).threads, 2);
  });
});

describe('bench --threads-sweep (small steps: the code path, not the speed)', () => {
  it('measures each thread count, records the sweep, and train takes its default from it', () => {
    const cache = tmpDir('thread-sweep-');
    const env = { MNIST_LAB_CACHE: cache, SLURM_CPUS_PER_TASK: '2' };
    const r = runCli('bench', ['--model', 'cnn-small', '--threads-sweep', '--sweep-rounds', '2', '--batch-size', '8', '--steps', '1', '--warmup-seconds', '0',
      '--backend', 'wasm', '--json'], env);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /compute threads 1, 2 \(Slurm's --cpus-per-task 2\)/);
    assert.match(r.stdout, /each cell the median of 2 runs/);
    const json = JSON.parse(r.stdout.trim().split('\n').pop()!) as { thread_counts: number[]; rounds: number;
      threads_sweep: Record<string, { samples_per_s: Record<string, number>; ops_samples_per_s?: Record<string, number>; chosen: number; chosen_split: ComputeSplit;
        runs: { samples_per_s: Record<string, number[]>; ops_samples_per_s?: Record<string, number[]> } }> };
    assert.deepEqual(json.thread_counts, [1, 2]);
    assert.equal(json.rounds, 2);
    const sweep = json.threads_sweep['cnn-small'];
    // Each cell is the median (here the mean) of its two runs, and the runs are kept.
    const pairs: [Record<string, number>, Record<string, number[]>][] = [[sweep.samples_per_s, sweep.runs.samples_per_s], [sweep.ops_samples_per_s!, sweep.runs.ops_samples_per_s!]];
    for (const [figures, runs] of pairs) {
      for (const [t, v] of Object.entries(figures)) {
        assert.equal(runs[t].length, 2, `runs of ${t} threads`);
        assert.ok(Math.abs(v - (runs[t][0] + runs[t][1]) / 2) < 1e-9, `${t} threads: ${v} is the median of ${runs[t]}`);
      }
    }
    assert.deepEqual(Object.keys(sweep.ops_samples_per_s!), ['2'], 'split operations from 2 threads');
    assert.ok(sweep.samples_per_s['1'] > 0 && sweep.samples_per_s['2'] > 0);
    assert.ok(sweep.ops_samples_per_s!['2'] > 0, 'split operations measured too');
    assert.deepEqual({ threads: sweep.chosen, split: sweep.chosen_split },
      fastestLayout({ batch: sweep.samples_per_s, ops: sweep.ops_samples_per_s }, 2));
    const [record] = readThreadSweeps(path.join(cache, 'thread-sweeps.json'));
    assert.equal(record.model, 'cnn-small');
    assert.equal(record.batch_size, 8);
    assert.deepEqual(record.samples_per_s, sweep.samples_per_s);
    assert.deepEqual(record.ops_samples_per_s, sweep.ops_samples_per_s);
    const refused = runCli('bench', ['--threads-sweep', '--compute-threads', '2'], env);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /--threads-sweep measures every thread count: leave --compute-threads out/);
    const alone = runCli('bench', ['--sweep-rounds', '2'], env);
    assert.equal(alone.status, 2);
    assert.match(alone.stderr, /--sweep-rounds goes with --threads-sweep/);
  });
});
