/**
 * The project's sbatch scripts on a real (throw-away, single-node) Slurm. Skipped, visibly,
 * where Slurm cannot run (not root, packages missing): .ci/run installs slurm-wlm and munge.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { runCli, tmpDir } from '../helpers';
import { LocalSlurm, slurmUnavailable } from './cluster';

// CI runs these once, on the system's Node (they time bash scripts and Slurm itself, the same on every Node line).
const reason = process.env.MNIST_LAB_SKIP_SLURM ? `MNIST_LAB_SKIP_SLURM=${process.env.MNIST_LAB_SKIP_SLURM}` : slurmUnavailable();
const skip = reason ? `SKIPPED: Slurm cannot run here: ${reason}` : false;
if (skip) process.stdout.write(`# ${skip}\n`);

const root = projectRoot();
const readMetrics = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('Slurm batch scripts', { skip }, () => {
  let slurm: LocalSlurm;
  const out = tmpDir('slurm-out-');

  before(async () => {
    slurm = new LocalSlurm();
    await slurm.start();
  });
  after(() => slurm?.stop());

  /** Submits a script of slurm/ with small parameters; output and results in temp folders. */
  function submit(script: string, name: string, sbatchArgs: string[], env: NodeJS.ProcessEnv): { id: string; output: () => string } {
    const id = slurm.submit([`--job-name=${name}`, `--output=${out}/%x-%j.out`, ...sbatchArgs, `slurm/${script}`], env, root);
    return { id, output: () => fs.readFileSync(path.join(out, `${name}-${id}.out`), 'utf8') };
  }

  it('a training job: workers from --cpus-per-task, parameters and backend printed, results in the job folder', async () => {
    const runDir = path.join(out, 'train');
    const job = submit('train.sbatch', 'train-small', ['-c', '2', '--time=10'], { EPOCHS: '1', LIMIT: '256', RUN_DIR: runDir });
    const state = await slurm.wait(job.id);
    const text = job.output();
    assert.equal(state.state, 'COMPLETED', text);
    assert.match(text, /parameters: EPOCHS=1 WORKERS=2 LIMIT=256 DATA=embedded MODEL=net BACKEND=auto/);
    assert.match(text, /cpus-per-task: 2/);
    assert.match(text, /^Backend: wasm — /m);
    assert.match(text, /DataLoader: 2 workers/);
    assert.match(text, /Test set: Average loss: /);
    assert.equal(readMetrics(runDir).length, 1);
    assert.ok(fs.existsSync(path.join(runDir, 'line-profile.txt')));
  });

  it('the same script with 1 and then 2 CPUs gives two runs (1 and 2 workers); the same settings again resume their run', async () => {
    const runsRoot = path.join(out, 'configs');
    const env = { EPOCHS: '1', LIMIT: '128', RUNS_ROOT: runsRoot };
    const one = submit('train.sbatch', 'cfg', ['-c', '1', '--time=10'], env);
    assert.equal((await slurm.wait(one.id)).state, 'COMPLETED', one.output());
    const two = submit('train.sbatch', 'cfg', ['-c', '2', '--time=10'], env);
    assert.equal((await slurm.wait(two.id)).state, 'COMPLETED', two.output());
    const folders = fs.readdirSync(path.join(runsRoot, 'cfg')).sort();
    assert.deepEqual(folders, ['net-embedded-w1-c1-auto-n128', 'net-embedded-w2-c2-auto-n128']);
    for (const [folder, workers] of [[folders[0], 1], [folders[1], 2]] as const) {
      const rows = JSON.parse(fs.readFileSync(path.join(runsRoot, 'cfg', folder, 'line-profile.json'), 'utf8')) as { workers: number }[];
      assert.ok(rows.length > 0 && rows.every((r) => r.workers === workers), `${folder}: the profile says ${workers} workers`);
    }
    assert.match(two.output(), /run folder .*net-embedded-w2-c2-auto-n128: starting this configuration's run/);
    assert.match(two.output(), /DataLoader: 2 workers/);
    const again = submit('train.sbatch', 'cfg', ['-c', '1', '--time=10'], { ...env, EPOCHS: '2' });
    assert.equal((await slurm.wait(again.id)).state, 'COMPLETED', again.output());
    assert.match(again.output(), /holds this configuration's run: resuming it/);
    assert.match(again.output(), /Resuming .*net-embedded-w1-c1-auto-n128 from epoch 2 \(last\.ckpt holds epoch 1\)/);
    assert.deepEqual(readMetrics(path.join(runsRoot, 'cfg', folders[0])).map((m) => m.epoch), [1, 2]);
  });

  it('refuses more workers than allocated CPUs, naming both numbers', async () => {
    const job = submit('train.sbatch', 'too-many', ['-c', '1', '--time=5'], { WORKERS: '2', EPOCHS: '1', LIMIT: '64', RUN_DIR: path.join(out, 'too-many') });
    const state = await slurm.wait(job.id);
    assert.equal(state.state, 'FAILED');
    assert.match(job.output(), /--workers 2 is more than the 1 CPU Slurm allocated to this job \(SLURM_CPUS_PER_TASK=1\)/);
    // And Slurm itself refuses a job that asks for more CPUs than the node has.
    assert.throws(() => submit('train.sbatch', 'impossible', ['-c', '64'], {}), /sbatch refused: .*(Requested node configuration is not available|More processors requested)/);
  });

  it('the sweep + report job writes both PDFs into the job folder', async () => {
    const runDir = path.join(out, 'sweep');
    const job = submit('sweep-report.sbatch', 'sweep-small', ['-c', '2', '--time=15'],
      { WORKERS_LIST: '1,2', EPOCHS: '1', LIMIT: '128', RUN_DIR: runDir });
    const state = await slurm.wait(job.id);
    const text = job.output();
    assert.equal(state.state, 'COMPLETED', text);
    for (const f of ['line-profile-w1.txt', 'line-profile-w2.txt', 'epochs.csv', 'lines.csv', 'report/architecture.pdf', 'report/profiling.pdf']) {
      assert.ok(fs.existsSync(path.join(runDir, f)), `${f}\n${text}`);
    }
  });

  it('the sweep as a job array, then a report job that waits for it (afterok)', async () => {
    const sweepRoot = path.join(out, 'array');
    const { execFileSync } = await import('node:child_process');
    const said = execFileSync('bash', ['slurm/submit-sweep.sh', '--time=15', `--output=${out}/%x-%A_%a.out`], {
      cwd: root, env: { ...slurm.env, WORKERS_LIST: '1,2', EPOCHS: '1', LIMIT: '128', SWEEP_ROOT: sweepRoot, CPUS: '1', ALLOW_OVERSUBSCRIBE: '1', EXTRA_ARGS: '--allow-oversubscribe' }, encoding: 'utf8',
    });
    const [, arrayId, , reportId] = said.match(/array job (\d+) \((\d+) tasks.*report job (\d+)/) ?? [];
    assert.ok(arrayId && reportId, said);
    const report = await slurm.wait(reportId);
    const sweepDir = path.join(sweepRoot, `mnist-sweep-array-${arrayId}`);
    assert.equal(report.state, 'COMPLETED', fs.readdirSync(out).join(' '));
    assert.ok(fs.existsSync(path.join(sweepDir, 'report', 'profiling.pdf')));
    assert.ok(fs.existsSync(path.join(sweepDir, 'runs', 'w2', 'line-profile.txt')));
  });

  it('a notebook job executes the notebooks headless and keeps the executed copies', async (t) => {
    const { spawnSync } = await import('node:child_process');
    if (spawnSync('/usr/bin/python3', ['-c', 'import nbclient']).status !== 0) return t.skip('SKIPPED: no Jupyter for /usr/bin/python3');
    const runDir = path.join(out, 'notebooks');
    const job = submit('notebooks.sbatch', 'notebooks-small', ['-c', '2', '--time=20'],
      { EPOCHS: '1', LIMIT: '128', WORKERS: '1,2', NOTEBOOKS: '01 02', RUN_DIR: runDir });
    const state = await slurm.wait(job.id);
    assert.equal(state.state, 'COMPLETED', job.output());
    assert.match(job.output(), /parameters: EPOCHS=1 WORKERS=1,2 LIMIT=128/);
    assert.match(job.output(), /All notebooks ran\./);
    for (const n of ['01-architecture.ipynb', '02-training.ipynb']) assert.ok(fs.existsSync(path.join(runDir, 'notebooks', n)), n);
  });

  it('a job cut by its time limit stops cleanly, and resubmitted jobs resume to the uninterrupted result', async () => {
    const runDir = path.join(out, 'limited');
    const env = { EPOCHS: '3', LIMIT: '1920', RUN_DIR: runDir };
    // Slurm sends the warning 50 s before the 1-minute limit, but may send it up to a minute early
    // or late; so that the cut does not depend on that timing, the test also sends the batch shell
    // the same signal (as --signal=B:USR1 does) once training has started.
    const first = submit('train.sbatch', 'limited', ['-c', '1', '--time=1', '--signal=B:USR1@50'], env);
    const outFile = path.join(out, `limited-${first.id}.out`);
    for (let i = 0; i < 240 && !/^Train Epoch: 1 \[/m.test(fs.existsSync(outFile) ? fs.readFileSync(outFile, 'utf8') : ''); i++) {
      if (/COMPLETED|FAILED|TIMEOUT|CANCELLED/.test(slurm.job(first.id).state)) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    slurm.run('scancel', ['--signal=USR1', '--batch', first.id], true);
    const firstState = await slurm.wait(first.id);
    assert.match(first.output(), /received USR1|Stopped by SIGUSR1|Stopped by SIGTERM|before training started/, first.output());
    assert.notEqual(firstState.state, 'COMPLETED');
    let submissions = 1;
    while ((fs.existsSync(path.join(runDir, 'metrics.jsonl')) ? readMetrics(runDir).length : 0) < 3 && submissions < 6) {
      const again = submit('train.sbatch', 'limited', ['-c', '1', '--time=10'], env);
      const s = await slurm.wait(again.id);
      submissions++;
      assert.equal(s.state, 'COMPLETED', again.output());
      assert.match(again.output(), /resuming from|parameters:/);
    }
    const resumed = readMetrics(runDir);
    assert.equal(resumed.length, 3);
    // The same training without Slurm and without interruption (one compute thread, as -c 1 gives).
    const straight = tmpDir('straight-');
    const r = runCli('train', ['--epochs', '3', '--limit', '1920', '--workers', '1', '--compute-threads', '1', '--out', straight]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(resumed.map((m) => [m.epoch, m.train_loss, m.test_loss, m.test_accuracy]),
      readMetrics(straight).map((m) => [m.epoch, m.train_loss, m.test_loss, m.test_accuracy]));
  });
});
