/**
 * Renders both PDFs from a stored small sweep (test/fixtures/sweep-small, made with
 * `npm run profile -- --workers 1,8 --epochs 2 --limit 192`) and checks them with
 * poppler: text, numbers equal to the inputs, metadata, fonts, pages not blank.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { runCli, tmpDir } from '../helpers';

const fixture = path.join(projectRoot(), 'test', 'fixtures', 'sweep-small');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const chromium = process.env.PUPPETEER_EXECUTABLE_PATH || ['chromium', 'chromium-browser', 'google-chrome'].find(has);
const missing = [!chromium && 'Chromium', !has('pdftotext') && 'poppler-utils'].filter(Boolean);
const skip = missing.length ? `SKIPPED: ${missing.join(' and ')} not installed (apt-get install chromium poppler-utils)` : false;
if (skip) process.stdout.write(`# ${skip}\n`);

const text = (pdf: string) => execFileSync('pdftotext', ['-layout', pdf, '-'], { encoding: 'utf8' });
const info = (pdf: string) => execFileSync('pdfinfo', [pdf], { encoding: 'utf8' });

/** Fraction of non-white pixels on each page (rendered in grey at 20 dpi). */
function inkPerPage(pdf: string): number[] {
  const dir = tmpDir('pages-');
  execFileSync('pdftoppm', ['-gray', '-r', '20', pdf, path.join(dir, 'p')]);
  return fs.readdirSync(dir).sort().map((f) => {
    const buf = fs.readFileSync(path.join(dir, f));
    // PGM: "P5\n<w> <h>\n255\n" then bytes.
    const header = buf.toString('latin1', 0, 40).match(/^P5\s+(\d+)\s+(\d+)\s+255\s/)!;
    const pixels = buf.subarray(header[0].length);
    let ink = 0;
    for (const v of pixels) if (v < 200) ink++;
    return ink / pixels.length;
  });
}

describe('npm run report (from a stored sweep)', { skip }, () => {
  const out = tmpDir('report-');
  let stdout = '';
  before(() => {
    const r = runCli('report', ['--results', fixture, '--out', out]);
    stdout = r.stdout;
    assert.equal(r.status, 0, `report failed:\n${r.stdout}\n${r.stderr}`);
  });

  it('writes both PDFs, A4, titled, with embedded fonts and no blank page', () => {
    for (const [file, title] of [['architecture.pdf', 'net: architecture'], ['profiling.pdf', 'MNIST line profile: 1 vs 8 workers']]) {
      const pdf = path.join(out, file);
      const meta = info(pdf);
      assert.match(meta, new RegExp(`Title:\\s+${title}`));
      assert.match(meta, /Page size:\s+595\.\d+ x 841\.\d+ pts \(A4\)|Page size:\s+595\.\d+ x 842\.\d+ pts \(A4\)/);
      const fonts = execFileSync('pdffonts', [pdf], { encoding: 'utf8' }).split('\n').slice(2).filter(Boolean);
      assert.ok(fonts.length > 0 && fonts.every((l) => / yes /.test(l)), `fonts embedded:\n${fonts.join('\n')}`);
      const ink = inkPerPage(pdf);
      ink.forEach((v, i) => assert.ok(v > 0.005, `${file} page ${i + 1} looks blank (${(100 * v).toFixed(2)}% ink)`));
    }
    assert.match(stdout, /Rendered in [\d.]+ s/);
  });

  it('architecture.pdf describes the model from its definition', () => {
    const t = text(path.join(out, 'architecture.pdf'));
    for (const s of ['Layers', 'Receptive fields', 'What each layer does', 'Why the shapes are what they are', '3,274,634',
      'Conv2d-1', 'MaxPool2d-6', 'Linear-8', '3,212,288', '7·7·64 = 3,136', '(28 + 2·2 − 5)/1 + 1 = 28', '16×16']) {
      assert.ok(t.includes(s), `architecture.pdf lacks "${s}"`);
    }
  });

  it('profiling.pdf holds the environment, both profiles, the side-by-side table, charts and an analysis with the input numbers', () => {
    const t = text(path.join(out, 'profiling.pdf'));
    for (const s of ['Environment', 'Analysis', 'Side by side, per line', 'Charts', 'Line profiles', 'Timer unit: 1e-06 s',
      'Function: trainEpoch at line', 'for await (const batch of loader)', 'Time per line, mean per epoch', 'Training time per epoch',
      'Waiting for the next batch', 'Test accuracy per epoch']) {
      assert.ok(t.includes(s), `profiling.pdf lacks "${s}"`);
    }
    const metrics = (w: number) => fs.readFileSync(path.join(fixture, 'runs', `w${w}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const mean = (w: number) => metrics(w).reduce((a: number, m: { train_seconds: number }) => a + m.train_seconds, 0) / metrics(w).length;
    assert.ok(t.includes(`${mean(1).toFixed(1)} s with 1 worker and ${mean(8).toFixed(1)} s with 8`), 'epoch times from the inputs');
    const final = metrics(1).at(-1).test_accuracy.toFixed(2);
    assert.ok(t.includes(`${final}%`), `final accuracy ${final}% from the inputs`);
  });

  it('profiling.pdf shows every thread: the timeline chart, the per-thread table, the per-worker table and the workers\' line profile', () => {
    const t = text(path.join(out, 'profiling.pdf'));
    for (const s of ['Every thread, step by step', 'Every thread during a few training steps', 'milliseconds from the window start',
      'compute thread 1', 'loader worker 8', 'The loader workers, line by line', 'all workers', 'Function: buildBatch at line',
      'Loader workers: 8 threads, merged', 'trace.json']) {
      assert.ok(t.includes(s), `profiling.pdf lacks "${s}"`);
    }
    // The analysis quotes the loader side measured in the inputs' timelines.
    const threads = (w: number) => JSON.parse(fs.readFileSync(path.join(fixture, 'runs', `w${w}`, 'threads.json'), 'utf8')) as
      { kind: string; batches_built: number; mean_build_ms: number; mean_queue_ready: number }[];
    const build = (w: number) => {
      const loaders = threads(w).filter((r) => r.kind === 'loader');
      const n = loaders.reduce((a, r) => a + r.batches_built, 0);
      return (loaders.reduce((a, r) => a + r.mean_build_ms * r.batches_built, 0) / n).toFixed(2);
    };
    const flat = t.replace(/\s+/g, ' ');
    assert.ok(flat.includes(`building a batch took ${build(1)} ms in a worker with 1 worker and ${build(8)} ms with 8 workers`), 'build times from the inputs');
    const ready = threads(8).find((r) => r.kind === 'main')!.mean_queue_ready.toFixed(1);
    assert.ok(flat.includes(`${ready} batches were ready on average with 8 workers`), `queue ${ready} from the inputs`);
    assert.doesNotMatch(flat, /in flight/);
  });

  it('a sweep measured on two machines says so at the top of the analysis, and where each run was measured', () => {
    const sweep = tmpDir('mixed-');
    fs.cpSync(fixture, sweep, { recursive: true });
    const configFile = path.join(sweep, 'runs', 'w8', 'config.json');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    Object.assign(config.machine, { hostname: 'node-17', cpus: 64, slurm_job_id: '4242', slurm_cpus_per_task: '8' });
    fs.writeFileSync(configFile, JSON.stringify(config));
    const dir = tmpDir('mixed-out-');
    const r = runCli('report', ['--results', sweep, '--out', dir], { SLURM_JOB_ID: '1', SLURM_CPUS_PER_TASK: '2' });
    assert.equal(r.status, 0, r.stderr);
    const t = text(path.join(dir, 'profiling.pdf')).replace(/\s+/g, ' ');
    assert.match(t, /Analysis .*Not like for like: the runs were measured under different conditions \(host: /);
    assert.match(t, /host node-17: [^;]*64 CPUs available, Slurm job 4242 \(8 CPUs per task\)/);
    assert.doesNotMatch(t, /Slurm job 1 /, 'the rendering process does not label the measurements');
  });

  it('a sweep recorded by the earlier version (untagged lines, no machine in its runs) still renders, saying what was not recorded', () => {
    const dir = tmpDir('v1-out-');
    const r = runCli('report', ['--results', path.join(projectRoot(), 'test', 'fixtures', 'sweep-v1'), '--out', dir]);
    assert.equal(r.status, 0, r.stderr);
    const t = text(path.join(dir, 'profiling.pdf')).replace(/\s+/g, ' ');
    assert.match(t, /host not recorded: not recorded, not recorded CPUs available/);
    assert.match(t, /from not recorded to/);
    assert.match(t, /not recorded compute threads/);
    assert.match(t, /This sweep was recorded before profile lines were tagged: the wait for data is known from its loop waits/);
    assert.match(t, /waiting for the next batch \(line 116\)/);
    assert.doesNotMatch(t, /Inside the step/);
  });

  it('Ctrl-C while rendering leaves no temporary file and no .md newer than its PDF', async () => {
    const dir = tmpDir('render-stop-');
    const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'report.js'), '--results', fixture, '--out', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b) => (output += b));
    let stderr = '';
    child.stderr.on('data', (b) => (stderr += b));
    const closed = new Promise((r) => child.on('close', r));
    for (let i = 0; i < 600 && !/Rendering /.test(output); i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const code = await closed;
    const files = fs.readdirSync(dir);
    assert.deepEqual(files.filter((f) => f.includes('.tmp')), [], `no temporary file: ${files.join(' ')}`);
    for (const md of files.filter((f) => f.endsWith('.md'))) {
      const pdf = path.join(dir, md.replace(/\.md$/, '.pdf'));
      assert.ok(fs.existsSync(pdf) && fs.statSync(pdf).mtimeMs <= fs.statSync(path.join(dir, md)).mtimeMs + 1, `${md} has its PDF, made before it`);
    }
    if (code !== 0) {
      assert.equal(code, 130, stderr);
      assert.match(stderr, /Stopped by SIGINT while rendering: .* keeps the PDFs it had; run the same command again to render/);
    }
  });

  it('reuses a sweep only when measured alike: the log says where and when; another Slurm allocation measures anew', () => {
    const runs = tmpDir('reuse-runs-');
    const args = ['--model', 'fc', '--epochs', '1', '--limit', '64', '--workers', '0,1', '--out', tmpDir('reuse-out-')];
    const env = { MNIST_LAB_RUNS: runs };
    const first = runCli('report', args, env);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /Running the 0-vs-1-worker sweep/);
    const again = runCli('report', args, env);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /Reusing the sweep in .*report\/embedded_fc_e1_w0-1_n64_\w+, measured on \S+ \(.*, \d+ CPUs, wasm, \d+ compute threads\) from \d{4}-\d\d-\d\dT\S+ to \d{4}-\d\d-\d\dT\S+ \(--fresh measures again\)/);
    assert.doesNotMatch(again.stdout, /Running the/);
    const inJob = runCli('report', args, { ...env, SLURM_JOB_ID: '77', SLURM_CPUS_PER_TASK: '1' });
    assert.equal(inJob.status, 0, inJob.stderr);
    assert.match(inJob.stdout, /Running the 0-vs-1-worker sweep/, 'a Slurm job with 1 CPU measures its own sweep');
    assert.equal(fs.readdirSync(path.join(runs, 'report')).length, 2, 'two sweeps, each in its own folder');
    const config = JSON.parse(fs.readFileSync(path.join(inJob.stdout.match(/into (\S+)/)![1], 'runs', 'w1', 'config.json'), 'utf8'));
    assert.equal(config.compute_threads, 1, 'one compute thread for the 1-CPU job');
    assert.equal(config.machine.slurm_job_id, '77');
  });
});

describe('npm run report with the browser packaged on npm (no system Chromium on the PATH)', { skip: has('pdftotext') ? false : 'SKIPPED: poppler-utils not installed' }, () => {
  it('renders both PDFs, A4, fonts embedded, no blank page', () => {
    const out = tmpDir('packaged-');
    const emptyPath = tmpDir('no-browser-path-');
    const r = runCli('report', ['--results', fixture, '--out', out], { PATH: emptyPath, PUPPETEER_EXECUTABLE_PATH: '' });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /Chromium: \S+ \(npm package @sparticuz\/chromium \d+\.\d+\.\d+, unpacked in /);
    for (const file of ['architecture.pdf', 'profiling.pdf']) {
      const pdf = path.join(out, file);
      assert.match(info(pdf), /Page size:\s+595\.\d+ x 84[12]\.\d+ pts \(A4\)/);
      const fonts = execFileSync('pdffonts', [pdf], { encoding: 'utf8' }).split('\n').slice(2).filter(Boolean);
      assert.ok(fonts.length > 0 && fonts.every((l) => / yes /.test(l)), `fonts embedded:\n${fonts.join('\n')}`);
      inkPerPage(pdf).forEach((v, i) => assert.ok(v > 0.005, `${file} page ${i + 1} looks blank`));
    }
    assert.match(text(path.join(out, 'profiling.pdf')), /Timer unit: 1e-06 s/);
  });
});

