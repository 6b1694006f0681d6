/**
 * What a run folder guarantees, on real files and real processes: a run is resumed only
 * with its own settings, never overwritten, written by one process at a time, and every
 * fault in it (damaged files, a full file system, a diverging loss) is a one-line error
 * naming the file and what to do.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { encodeIdx } from '../../lib/data/idx';
import { MNIST_FILES } from '../../lib/data/mnist-files';
import { CliResult, runCli, tmpDir, writeDataFolder } from '../helpers';

/** A tiny, fast run: the fc model on 64 digits, one compute thread. */
const TINY = ['--model', 'fc', '--limit', '64', '--compute-threads', '1', '--backend', 'wasm', '--plain'];
const train = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli('train', [...TINY, ...args], env);

/** One clear line on stderr: `error: ...`, no stack trace. */
function assertUserError(r: CliResult, code: number, message: RegExp): void {
  assert.equal(r.status, code, `exit code\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.match(r.stderr, /^error: /);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, 'no stack trace');
}

const readMetrics = (dir: string) => fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('run folder', () => {
  let finished = '';
  before(() => {
    finished = path.join(tmpDir('run-'), 'finished');
    const r = train(['--epochs', '2', '--out', finished]);
    assert.equal(r.status, 0, r.stderr);
  });

  it('--out at a folder that holds a run is refused, naming the run and offering --resume', () => {
    const before = fs.readFileSync(path.join(finished, 'metrics.jsonl'), 'utf8');
    const r = runCli('train', ['--epochs', '1', '--limit', '64', '--model', 'net', '--out', finished]);
    assertUserError(r, 2, /--out .*finished holds a run already \(fc, 2 of 2 epochs done, best \d+\.\d\d%\): continue it with --resume .*finished, or choose another --out/);
    assert.equal(fs.readFileSync(path.join(finished, 'metrics.jsonl'), 'utf8'), before, 'the run is untouched');
  });

  it('--out naming a file is refused', () => {
    const file = path.join(tmpDir(), 'a-file');
    fs.writeFileSync(file, 'x');
    assertUserError(train(['--out', file]), 2, /--out .*a-file: this is a file; --out expects a folder/);
  });

  it('--resume with other settings is refused before any work, one line per difference; raising --epochs continues', () => {
    const r = runCli('train', ['--resume', finished, '--workers', '8', '--model', 'bn-14k', '--batch-size', '32', '--epochs', '3']);
    assertUserError(r, 2, /the run was made with other settings than asked for:\n {2}--model: the run has fc, asked for bn-14k\n {2}--batch-size: the run has 64, asked for 32\n {2}--workers: the run has 1, asked for 8\nDrop those options/);
    assert.doesNotMatch(r.stdout, /Backend:/, 'nothing started');
    const copy = path.join(tmpDir(), 'continued');
    fs.cpSync(finished, copy, { recursive: true });
    const more = runCli('train', ['--resume', copy, '--epochs', '3', '--plain']);
    assert.equal(more.status, 0, more.stderr);
    assert.match(more.stdout, /Resuming .*continued from epoch 3 \(last\.ckpt holds epoch 2\)/);
    assert.deepEqual(readMetrics(copy).map((m) => m.epoch), [1, 2, 3]);
    assert.equal(JSON.parse(fs.readFileSync(path.join(copy, 'config.json'), 'utf8')).options.model, 'fc');
  });

  it('a truncated last.ckpt is refused with the file named, offering the intact best.ckpt', () => {
    const copy = path.join(tmpDir(), 'truncated');
    fs.cpSync(finished, copy, { recursive: true });
    const ckpt = path.join(copy, 'last.ckpt');
    fs.truncateSync(ckpt, Math.floor(fs.statSync(ckpt).size / 2));
    const r = runCli('train', ['--resume', copy, '--epochs', '3']);
    assertUserError(r, 2, /last\.ckpt: damaged checkpoint \(the checksum of its \d+ bytes of values does not match\): it was truncated or overwritten\. best\.ckpt \(epoch \d, \d+\.\d\d%\) is intact: to continue from it, copy it over last\.ckpt \(cp .*best\.ckpt .*last\.ckpt\)/);
    fs.writeFileSync(ckpt, Buffer.concat([Buffer.from('MNLCKPT1'), Buffer.from([40, 0, 0, 0]), Buffer.from('{"epoch": 2, "tens')]));
    assertUserError(runCli('predict', ['--checkpoint', ckpt, '--index', '0']), 2, /last\.ckpt: damaged checkpoint \(its header needs 40 bytes, the file has 18\)/);
  });

  it('a checkpoint of another model is refused, naming both', () => {
    const copy = path.join(tmpDir(), 'other-model');
    fs.cpSync(finished, copy, { recursive: true });
    const configFile = path.join(copy, 'config.json');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    config.options.model = 'cnn-small';
    fs.writeFileSync(configFile, JSON.stringify(config));
    assertUserError(runCli('train', ['--resume', copy, '--epochs', '3']), 2, /last\.ckpt: a checkpoint of model 'fc' \(4 weights: 784x128, 128, 128x10…\), but this run trains 'cnn-small'/);
  });

  it('damaged config.json and metrics.jsonl: one line naming the file from --resume, runs, runs --compare and report --results', () => {
    const root = tmpDir('runs-root-');
    const good = path.join(root, 'good');
    const bad = path.join(root, 'bad');
    fs.cpSync(finished, good, { recursive: true });
    fs.cpSync(finished, bad, { recursive: true });
    fs.writeFileSync(path.join(bad, 'config.json'), '{"options": {"model": "fc", "epo');
    assertUserError(runCli('train', ['--resume', bad]), 2, /bad\/config\.json: not valid JSON \(.*\): the file is damaged/);
    const list = runCli('runs', ['--root', root]);
    assert.equal(list.status, 2, list.stderr);
    assert.match(list.stdout, /^good +fc +/m, 'the good run is listed');
    assert.match(list.stderr, /1 damaged run folder, not listed:\n {2}.*bad\/config\.json: not valid JSON/);
    assertUserError(runCli('runs', ['--compare', good, bad, '--html', path.join(root, 'c.html')]), 2, /bad\/config\.json: not valid JSON/);
    fs.cpSync(finished, bad, { recursive: true });
    fs.appendFileSync(path.join(bad, 'metrics.jsonl'), '{"epoch": 3, "train_lo\n');
    assertUserError(runCli('runs', ['--compare', good, bad, '--html', path.join(root, 'c.html')]), 2, /bad\/metrics\.jsonl, line 3: not valid JSON .*the file is damaged/);
    const sweep = tmpDir('sweep-');
    fs.cpSync(path.join(projectRoot(), 'test', 'fixtures', 'sweep-small'), sweep, { recursive: true });
    fs.writeFileSync(path.join(sweep, 'runs', 'w8', 'metrics.jsonl'), 'garbage\n');
    assertUserError(runCli('report', ['--results', sweep, '--out', tmpDir()]), 2, /w8\/metrics\.jsonl, line 1: not valid JSON/);
    fs.rmSync(path.join(sweep, 'runs', 'w8', 'line-profile.json'));
    assertUserError(runCli('report', ['--results', sweep, '--out', tmpDir()]), 2, /w8: missing line-profile\.json: the run with 8 workers did not finish\. Finish it with npm run profile -- --workers 1,8 --out /);
    const repeated = runCli('report', ['--workers', '1,1']);
    assert.equal(repeated.status, 2); // a bad option exits 2, as --help says (commander's own 1 before)
    assert.match(repeated.stderr, /expected at least 2 different worker counts separated by commas \(e\.g\. 1,8\), got '1,1'/);
  });

  it('one writer per run folder: a second process is refused naming the first; a dead holder\'s lock does not block', async () => {
    const dir = path.join(tmpDir(), 'busy');
    const first = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'train.js'), ...TINY, '--model', 'net', '--limit', '640', '--epochs', '2', '--out', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    first.stdout.on('data', (b) => (output += b));
    const closed = new Promise((r) => first.on('close', r));
    for (let i = 0; i < 400 && !/Train Epoch: 1/.test(output); i++) await new Promise((r) => setTimeout(r, 50));
    const second = train(['--epochs', '1', '--out', dir]);
    assertUserError(second, 2, new RegExp(`run folder .*busy is in use by another process: pid ${first.pid} on ${os.hostname()} since \\S+ \\(train\\.js`));
    const resumeToo = runCli('train', ['--resume', dir]);
    assert.match(resumeToo.stderr, /is in use by another process/);
    const code = await closed;
    assert.equal(code, 0, output);
    assert.ok(!fs.existsSync(path.join(dir, '.lock')), 'the lock is released');
    // A lock whose process is gone (a crash) frees itself.
    const stale = path.join(tmpDir(), 'stale');
    fs.mkdirSync(stale);
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    fs.writeFileSync(path.join(stale, '.lock'), JSON.stringify({ pid: Number(dead), host: os.hostname(), since: '2026-01-01T00:00:00Z', command: 'train.js' }));
    assert.equal(train(['--epochs', '1', '--out', stale]).status, 0);
  });

  it('runs started in the same second without --out get folders of their own', async () => {
    const root = tmpDir('same-second-');
    const start = () => new Promise<number>((resolve) => spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'train.js'), ...TINY, '--epochs', '1'],
      { env: { ...process.env, MNIST_LAB_RUNS: root }, stdio: 'ignore' }).on('close', resolve));
    const codes = await Promise.all([start(), start(), start()]);
    assert.deepEqual(codes, [0, 0, 0]);
    const folders = fs.readdirSync(root);
    assert.equal(folders.length, 3, folders.join(' '));
    for (const f of folders) assert.equal(readMetrics(path.join(root, f)).length, 1, f);
  });

  it('a full file system: the path and size named, the previous last.ckpt intact, metrics.jsonl without the unsaved epoch', (t) => {
    if (process.getuid?.() !== 0) return t.skip('SKIPPED: mounting a small tmpfs needs root');
    const mount = tmpDir('tmpfs-');
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', mount]);
    } catch (err) {
      return t.skip(`SKIPPED: cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`);
    }
    try {
      const dir = path.join(mount, 'run');
      // fc's checkpoints are about 1.2 MB: epoch 1 writes last and best (2.4 MB), epoch 2 finds no room.
      const r = train(['--epochs', '3', '--out', dir]);
      assertUserError(r, 2, /cannot write .*run\/last\.ckpt \(1\.2 MB\): no space left on the device \(ENOSPC\)\. Epoch 2 was not saved; the previous last\.ckpt \(epoch 1\) is intact and metrics\.jsonl ends there\. Free space .* then continue with --resume .*run/);
      assert.deepEqual(readMetrics(dir).map((m) => m.epoch), [1]);
      assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.tmp')), [], 'no temporary file left');
      // Room again (here: the folder moved to a roomier disk): the run continues from epoch 2.
      const moved = path.join(tmpDir(), 'run');
      fs.cpSync(dir, moved, { recursive: true });
      const resumed = runCli('train', ['--resume', moved, '--plain']);
      assert.equal(resumed.status, 0, resumed.stderr);
      assert.match(resumed.stdout, /from epoch 2 \(last\.ckpt holds epoch 1\)/);
    } finally {
      execFileSync('umount', [mount]);
    }
  });

  it('a loss that becomes NaN stops the run with its own exit code, naming the epoch, batch and lr, recorded in metrics.jsonl', () => {
    const dir = path.join(tmpDir(), 'diverged');
    const r = train(['--epochs', '2', '--limit', '640', '--lr', '1e30', '--optimizer', 'sgd', '--out', dir]);
    assertUserError(r, 4, /the training loss became (NaN|Infinity|-Infinity) at epoch 1, batch \d+ \(lr 1e\+30\): training cannot go on\. Lower --lr/);
    const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].epoch, 1);
    assert.match(lines[0].diverged.loss, /NaN|Infinity/);
  });

  it('an empty test set and a batch larger than the data are told plainly', () => {
    const data = writeDataFolder(tmpDir('empty-test-'), 40, 20);
    fs.writeFileSync(path.join(data, MNIST_FILES.testImages), encodeIdx([0, 28, 28], new Uint8Array(0)));
    fs.writeFileSync(path.join(data, MNIST_FILES.testLabels), encodeIdx([0], new Uint8Array(0)));
    assertUserError(runCli('train', ['--data', data, '--epochs', '1']), 2, /t10k-images-idx3-ubyte: holds 0 images; a data set needs at least one in each split/);
    const big = train(['--epochs', '1', '--batch-size', '100000', '--out', path.join(tmpDir(), 'big')]);
    assert.equal(big.status, 0, big.stderr);
    assert.match(big.stdout, /Note: --batch-size 100000 is larger than the 64 training samples: each epoch is one batch of 64/);
  });
});
