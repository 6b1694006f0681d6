import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { runCli, tmpDir } from '../helpers';

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
    assert.deepEqual(lines.columns, ['file', 'function', 'line', 'hits', 'time_s', 'per_hit_s', 'percent', 'contents', 'tag', 'workers', 'epoch']);
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
