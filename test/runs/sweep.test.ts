import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { runCli, tmpDir } from '../helpers';
import { readSweep } from '../../lib/runs/sweep';
import { loaderTable } from '../../report/analysis';

describe('profile sweep (npm run profile)', () => {
  it('trains once per worker count and gathers line_profiler texts and danfo tables', async () => {
    const out = tmpDir();
    const r = runCli('profile', ['--workers', '0,2', '--epochs', '1', '--limit', '128', '--backend', 'wasm', '--out', out]);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    for (const f of ['line-profile-w0.txt', 'line-profile-w2.txt', 'epochs.csv', 'lines.csv', 'lines-by-workers.csv', 'machine.json']) {
      assert.ok(fs.existsSync(path.join(out, f)), f);
    }
    assert.match(fs.readFileSync(path.join(out, 'line-profile-w2.txt'), 'utf8'), /for await \(const batch of loader\)/);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const dfd = require('danfojs-node') as typeof import('danfojs-node');
    const lines = await dfd.readCSV(path.join(out, 'lines.csv'));
    assert.deepEqual(lines.columns, ['file', 'function', 'line', 'hits', 'time_s', 'per_hit_s', 'percent', 'contents', 'tag', 'workers', 'epoch', 'thread']);
    // Every thread's lines: the loader workers' batch building only where there are workers, one set per worker.
    const rowThreads = lines.column('thread').values as string[];
    const rowWorkers = lines.column('workers').values as number[];
    const threadsOf = (w: number) => [...new Set(rowThreads.filter((_, i) => rowWorkers[i] === w))].filter((t) => !t.startsWith('compute')).sort();
    assert.deepEqual(threadsOf(0), ['main']);
    assert.deepEqual(threadsOf(2), ['loader worker 1', 'loader worker 2', 'main']);
    for (const f of ['threads.csv', 'trace-w0.json', 'trace-w2.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
    assert.match(fs.readFileSync(path.join(out, 'line-profile-w2.txt'), 'utf8'), /Loader workers: 2 threads, merged[\s\S]*Function: buildBatch at line/);
    assert.doesNotMatch(fs.readFileSync(path.join(out, 'line-profile-w0.txt'), 'utf8'), /Loader workers:/);
    // The worker table: per worker from the workers' own line profiles, totals that are the sums of the rows.
    const sweep = readSweep(out);
    const { rows, total } = loaderTable(sweep, 2);
    assert.deepEqual(rows.map((r) => r.thread), ['loader worker 1', 'loader worker 2']);
    assert.equal(total.batches, 2, '128 samples in batches of 64: two batches built, one per worker');
    for (const k of ['batches', 'build_s', 'handover_s', 'total_s'] as const) {
      assert.ok(Math.abs(total[k] - rows.reduce((n, r) => n + r[k], 0)) < 1e-12, k);
    }
    assert.ok(rows.every((r) => r.batches === 1 && r.build_s > 0 && r.build_s <= r.total_s && r.idle_share >= 0 && r.idle_share <= 1), JSON.stringify(rows));
    const merged = sweep.workerLines.filter((l) => l.workers === 2).reduce((n, l) => n + l.time_s, 0);
    assert.ok(Math.abs(merged - total.total_s) < 1e-12);
    assert.equal(loaderTable(sweep, 0).rows.length, 0);
    const contents = lines.column('contents').values as string[];
    assert.ok(contents.includes('const data = tf.tensor4d(part.images, [part.size, 28, 28, 1]);'), 'quoted fields survive');
    const epochs = await dfd.readCSV(path.join(out, 'epochs.csv'));
    const loss = epochs.column('train_loss').values as number[];
    assert.equal(loss.length, 2);
    assert.equal(loss[0], loss[1], 'the same seed gives the same loss with 0 and 2 workers');
    assert.deepEqual(epochs.column('workers').values, [0, 2]);
    const threads = epochs.column('compute_threads').values as number[];
    assert.ok(threads[0] >= 1 && threads[0] === threads[1], `compute threads ${threads}`);
    assert.match(r.stdout, /time_w0 +time_w2 +Contents/);
  });

  it('refuses a bad worker list', () => {
    const r = runCli('profile', ['--workers', '1,x']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /expected worker counts separated by commas \(e\.g\. 1,8\), got '1,x'/);
  });

  it('gathering keeps where each run was measured: the gathering process (another Slurm job here) never relabels it', () => {
    const sweep = tmpDir('provenance-');
    fs.cpSync(path.join(projectRoot(), 'test', 'fixtures', 'sweep-small'), sweep, { recursive: true });
    // The 8-worker run was measured on another node, inside a Slurm job of its own.
    const configFile = path.join(sweep, 'runs', 'w8', 'config.json');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    Object.assign(config.machine, { hostname: 'node-17', cpus: 64, slurm_job_id: '4242', slurm_cpus_per_task: '8' });
    fs.writeFileSync(configFile, JSON.stringify(config));
    const r = runCli('profile', ['--gather', '--workers', '1,8', '--out', sweep], { SLURM_JOB_ID: '1', SLURM_CPUS_PER_TASK: '2' });
    assert.equal(r.status, 0, r.stderr);
    const machine = JSON.parse(fs.readFileSync(path.join(sweep, 'machine.json'), 'utf8'));
    assert.equal(machine.like_for_like, false);
    const w1 = JSON.parse(fs.readFileSync(path.join(sweep, 'runs', 'w1', 'config.json'), 'utf8')).machine;
    assert.deepEqual(machine.runs.map((p: { host: string; slurm_job_id: string }) => [p.host, p.slurm_job_id]), [[w1.hostname, w1.slurm_job_id], ['node-17', '4242']]);
    assert.match(machine.differences.join('\n'), /host: .* \(1 worker\) vs node-17 \(8 workers\)/);
    const csv = fs.readFileSync(path.join(sweep, 'epochs.csv'), 'utf8');
    assert.doesNotMatch(csv, /,1,2,|"1","2"/, 'nothing says Slurm job 1 with 2 CPUs');
    assert.match(csv, /node-17/);
  });
});
