/**
 * What a hostile pass found on 3c4e18c (issue 31), each case on real files, real processes and
 * real signals: studies mixed into one deliverable, a resumed run's plan lowered, a user's own
 * files replaced, silent ignores, stack traces for paths a user gives, leftovers of interrupted
 * writes and renders, exit codes, messages that dump values or misname damage, HTML in names.
 * (The SGD schedule is in test/training/optim.test.ts; the download timeout in test/data.)
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import { MNIST_FILES } from '../../lib/data/mnist-files';
import { projectRoot } from '../../lib/util/paths';
import { sweepRequest } from '../../report/build';
import { CliResult, runCli, tmpDir, writeDataFolder } from '../helpers';

/** A tiny, fast run: the fc model on 64 digits, one compute thread. */
const TINY = ['--model', 'fc', '--limit', '64', '--compute-threads', '1', '--backend', 'wasm', '--plain'];
const train = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli('train', [...TINY, ...args], env);
const fixture = path.join(projectRoot(), 'test', 'fixtures', 'sweep-small');

/** One clear line on stderr: `error: ...`, no stack trace. */
function assertUserError(r: CliResult, code: number, message: RegExp): void {
  assert.equal(r.status, code, `exit code\n${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, message);
  assert.match(r.stderr, /^error: /m);
  assert.doesNotMatch(r.stderr, /internal error|\n\s+at /, 'no stack trace');
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const chromium = process.env.PUPPETEER_EXECUTABLE_PATH || ['chromium', 'chromium-browser', 'google-chrome'].find(has);
const renderSkip = chromium && has('pdftotext') ? false : 'SKIPPED: Chromium or poppler-utils not installed (apt-get install chromium poppler-utils)';
if (renderSkip) process.stdout.write(`# ${renderSkip}\n`);

/** A copy of the Net sweep fixture (1 and 8 workers) to spoil. */
function sweepCopy(name = 'sweep-'): string {
  const dir = tmpDir(name);
  fs.cpSync(fixture, dir, { recursive: true });
  return dir;
}

function editConfig(dir: string, change: (c: Record<string, any>) => void): void {
  const file = path.join(dir, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  change(config);
  fs.writeFileSync(file, JSON.stringify(config));
}

/** A copy of a checkpoint with its JSON header replaced (the length field and 4-byte alignment kept right). */
function withHeader(checkpoint: string, header: string): string {
  const bytes = fs.readFileSync(checkpoint);
  const oldLen = bytes.readUInt32LE(8);
  const padded = Buffer.from(header.padEnd(Math.ceil((12 + header.length) / 4) * 4 - 12, ' '));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(padded.length);
  const out = path.join(tmpDir('ckpt-'), 'last.ckpt');
  fs.writeFileSync(out, Buffer.concat([bytes.subarray(0, 8), len, padded, bytes.subarray(12 + oldLen)]));
  return out;
}

/** The JSON header of a checkpoint. */
function headerOf(checkpoint: string): string {
  const bytes = fs.readFileSync(checkpoint);
  return bytes.subarray(12, 12 + bytes.readUInt32LE(8)).toString();
}

describe('issue 31: a hostile pass', () => {
  let finished = '';
  before(() => {
    finished = path.join(tmpDir('run-'), 'finished');
    const r = train(['--epochs', '2', '--out', finished]);
    assert.equal(r.status, 0, r.stderr);
  });

  describe('2. one study per sweep folder', () => {
    it('profile into a sweep of another study is refused, naming each difference, before anything is trained', () => {
      const sweep = sweepCopy();
      const r = runCli('profile', ['--workers', '2,3', '--model', 'fc', '--limit', '640', '--out', sweep]);
      assertUserError(r, 2, /holds a study made with other settings than asked for:\n {2}--model: the run with 1 worker has net, asked for fc/);
      assert.match(r.stderr, /use another --out for this one, or --fresh/);
      assert.deepEqual(fs.readdirSync(path.join(sweep, 'runs')).sort(), ['w1', 'w8'], 'nothing trained');
      // Fewer epochs than its runs have done would tabulate 2-epoch runs beside 1-epoch ones; more continue them all.
      assertUserError(runCli('profile', ['--workers', '1,8', '--epochs', '1', '--limit', '640', '--out', sweep]), 2,
        /--epochs: the run with 1 worker has 2 done, asked for 1/);
    });

    it('profile into a folder of the user\'s own files is refused, naming them', () => {
      const dir = tmpDir('mine-');
      fs.writeFileSync(path.join(dir, 'thesis.tex'), 'mine');
      assertUserError(runCli('profile', ['--workers', '1,2', '--out', dir, '--limit', '64']), 2, /holds files that are not a worker study's \(thesis\.tex\)/);
      assert.equal(fs.readFileSync(path.join(dir, 'thesis.tex'), 'utf8'), 'mine');
    });

    it('report --model fc with a sweep of the Net is refused; without --model the sweep\'s own model is documented', () => {
      const r = runCli('report', ['--model', 'fc', '--results', fixture, '--out', tmpDir()]);
      assertUserError(r, 2, /--model fc, but the sweep in .* trained net: both PDFs must describe one model/);
    });

    it('report --results with runs of two models is refused, naming the difference', () => {
      const sweep = sweepCopy();
      editConfig(path.join(sweep, 'runs', 'w8'), (c) => { c.options.model = 'fc'; });
      assertUserError(runCli('report', ['--results', sweep, '--out', tmpDir()]), 2,
        /its runs belong to different studies.*\n {2}--model: net \(1 worker\) vs fc \(8 workers\)/);
    });

    it('report --results with runs of different data content is refused', () => {
      const sweep = sweepCopy();
      editConfig(path.join(sweep, 'runs', 'w1'), (c) => { c.data.fingerprint = 'aaaaaaaaaaaaaaaa'; });
      editConfig(path.join(sweep, 'runs', 'w8'), (c) => { c.data.fingerprint = 'bbbbbbbbbbbbbbbb'; });
      assertUserError(runCli('report', ['--results', sweep, '--out', tmpDir()]), 2, /--data \(content\): embedded \[aaaaaaaaaaaaaaaa\] \(1 worker\) vs embedded \[bbbbbbbbbbbbbbbb\]/);
    });

    it('the report\'s stored sweep is keyed by the data\'s content: changed files in the same folder are another study', async () => {
      const data = writeDataFolder(tmpDir('data-'), 40, 20);
      const ask = { data, model: 'net', epochs: 1, workers: [1, 8] };
      const before = (await sweepRequest(ask)).key;
      assert.equal((await sweepRequest(ask)).key, before, 'the same files, the same key');
      const labels = path.join(data, MNIST_FILES.trainLabels);
      const bytes = fs.readFileSync(labels);
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] + 1) % 10;
      fs.writeFileSync(labels, bytes);
      assert.notEqual((await sweepRequest(ask)).key, before);
    });

    it('a run records its data\'s content fingerprint', () => {
      const config = JSON.parse(fs.readFileSync(path.join(finished, 'config.json'), 'utf8'));
      assert.match(config.data.fingerprint, /^[0-9a-f]{16}$/);
    });
  });

  describe('3. --resume keeps the plan', () => {
    it('--epochs below the epochs done is refused and nothing changes', () => {
      const run = tmpDir('resume-');
      fs.cpSync(finished, run, { recursive: true });
      const config = fs.readFileSync(path.join(run, 'config.json'));
      assertUserError(runCli('train', ['--resume', run, '--epochs', '1']), 2, /--epochs 1: the run has done 2 epochs already .*never set below the epochs done/);
      assert.deepEqual(fs.readFileSync(path.join(run, 'config.json')), config);
    });

    it('a finished run resumed without more epochs says so, trains nothing and rewrites nothing', () => {
      const run = tmpDir('resume-');
      fs.cpSync(finished, run, { recursive: true });
      const before = Object.fromEntries(fs.readdirSync(run).map((f) => [f, fs.readFileSync(path.join(run, f))]));
      const r = runCli('train', ['--resume', run]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /has all 2 epochs already .*nothing to train\. Raise --epochs \(e\.g\. --epochs 3\) to continue it/);
      const after = Object.fromEntries(fs.readdirSync(run).map((f) => [f, fs.readFileSync(path.join(run, f))]));
      assert.deepEqual(after, before);
    });
  });

  describe('4. no silent ignores', () => {
    it('--momentum with Adadelta and more workers than CPUs each give one warning line', () => {
      const r = train(['--epochs', '1', '--momentum', '0.9', '--workers', '64', '--out', path.join(tmpDir(), 'r')]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^Warning: --momentum 0\.9 is not used by --optimizer adadelta \(only sgd takes a momentum\): ignored$/m);
      assert.match(r.stdout, /^Warning: --workers 64 is more than the \d+ CPUs? this process can use/m);
      const sgd = train(['--epochs', '1', '--optimizer', 'sgd', '--lr', '0.01', '--momentum', '0.9', '--out', path.join(tmpDir(), 'r')]);
      assert.doesNotMatch(sgd.stdout, /Warning/);
    });

    it('runs --root at a folder that is not there is an error, not "no runs yet"', () => {
      assertUserError(runCli('runs', ['--root', path.join(tmpDir(), 'typo')]), 2, /--root .*typo: no such folder/);
    });
  });

  it('5. --out at a folder of the user\'s own files (a config.json that is not a run\'s) is refused and the files kept', () => {
    const dir = tmpDir('own-');
    fs.writeFileSync(path.join(dir, 'config.json'), '{"mine": 1}\n');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'mine');
    assertUserError(train(['--epochs', '1', '--out', dir]), 2, /--out .* holds files that are not a run of this lab \(config\.json \(not a run's config\), notes\.txt\)/);
    assert.equal(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'), '{"mine": 1}\n');
  });

  describe('7. every path a user gives: a named error, never a stack', () => {
    let file = '';
    let loop = '';
    before(() => {
      const dir = tmpDir('paths-');
      file = path.join(dir, 'a-file');
      fs.writeFileSync(file, 'x');
      loop = path.join(dir, 'loop');
      fs.symlinkSync(path.join(dir, 'loop2'), loop);
      fs.symlinkSync(loop, path.join(dir, 'loop2'));
    });
    const cases: [string, () => CliResult, RegExp][] = [
      ['report --out a file', () => runCli('report', ['--out', file, '--results', fixture]), /--out .*a-file: this is a file; --out expects a folder/],
      ['report --out a symlink loop', () => runCli('report', ['--out', loop, '--results', fixture]), /--out .*loop: a symbolic-link loop/],
      ['report --results a file', () => runCli('report', ['--results', file, '--out', tmpDir()]), /--results .*a-file: this is a file/],
      ['profile --out a file', () => runCli('profile', ['--out', file]), /--out .*a-file: this is a file/],
      ['profile --out a symlink loop', () => runCli('profile', ['--out', loop]), /--out .*loop: a symbolic-link loop/],
      ['train --out a symlink loop', () => train(['--out', loop]), /--out .*loop: a symbolic-link loop/],
      ['train --out under a file', () => train(['--out', path.join(file, 'run')]), /--out .*a-file\/run: a part of the path is a file, not a folder/],
      ['train --resume a file', () => train(['--resume', file]), /--resume .*a-file: this is a file/],
      ['train --data a symlink loop', () => train(['--data', loop]), /--data .*loop: a symbolic-link loop/],
      ['runs --root a file', () => runCli('runs', ['--root', file]), /--root .*a-file: this is a file/],
      ['runs --compare --html a folder', () => runCli('runs', ['--compare', finished, finished, '--html', tmpDir()]), /--html .*: this is a folder; --html expects a file name/],
      ['predict --checkpoint a folder', () => runCli('predict', ['--checkpoint', tmpDir(), '--index', '0']), /--checkpoint .*: this is a folder; --checkpoint expects a file/],
      ['predict --checkpoint missing', () => runCli('predict', ['--checkpoint', path.join(tmpDir(), 'no.ckpt'), '--index', '0']), /--checkpoint .*no\.ckpt: no such file/],
    ];
    for (const [name, run, message] of cases) it(name, () => assertUserError(run(), 2, message));

    for (const [name, header, message] of [
      ['null', 'null', /its header is not a checkpoint's: expected an object, got null/],
      ['{}', '{}', /its header is not a checkpoint's: no epoch number/],
      ['bad offsets', JSON.stringify({ epoch: 1, testAccuracy: 1, bestAccuracy: 1, config: { model: 'fc' }, tensors: [{ name: 'weight/0', shape: [2], dtype: 'float32', offset: 3, length: 2 }] }),
        /tensor 1 \(weight\/0\) has offset 3, expected a multiple of 4/],
    ] as const) {
      it(`a checkpoint whose header is valid JSON of the wrong shape: ${name}`, () => {
        assertUserError(runCli('predict', ['--checkpoint', withHeader(path.join(finished, 'last.ckpt'), header), '--index', '0']), 2, message);
      });
    }

    it('a metrics line that is null, in runs --compare', () => {
      const run = tmpDir('null-');
      fs.cpSync(finished, run, { recursive: true });
      fs.appendFileSync(path.join(run, 'metrics.jsonl'), 'null\n');
      assertUserError(runCli('runs', ['--compare', finished, run, '--html', path.join(tmpDir(), 'c.html')]), 2,
        /metrics\.jsonl, line 3: expected a JSON object, got null: the file is damaged/);
    });
  });

  describe('8. nothing left behind', () => {
    it('a dead process\'s half-written checkpoint is removed by the next run in the folder', () => {
      const run = tmpDir('stale-');
      fs.cpSync(finished, run, { recursive: true });
      // What kill -9 during saveCheckpoint leaves: a temporary of a pid that is gone.
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
      const stale = path.join(run, `last.ckpt.tmp-${dead}-${Date.now()}`);
      fs.writeFileSync(stale, Buffer.alloc(1 << 20));
      const r = runCli('train', ['--resume', run, '--epochs', '3']);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(!fs.existsSync(stale), 'the stale temporary is gone');
      assert.deepEqual(fs.readdirSync(run).filter((f) => f.includes('.tmp-')), []);
    });

    it('kill -9 while a checkpoint is written, then resume: the folder ends with no temporary', async () => {
      const run = path.join(tmpDir('kill-'), 'r');
      const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'train.js'), ...TINY, '--model', 'net', '--epochs', '3', '--out', run],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      const closed = new Promise((resolve) => child.on('close', resolve));
      // Kill it as soon as a checkpoint temporary appears (the Net's is 39 MB: written over several ms).
      let sawTemporary = false;
      for (let i = 0; i < 3000 && child.exitCode === null; i++) {
        if (fs.existsSync(run) && fs.readdirSync(run).some((f) => f.includes('.ckpt.tmp-'))) {
          child.kill('SIGKILL');
          sawTemporary = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      if (!sawTemporary) child.kill('SIGKILL');
      await closed;
      const left = fs.readdirSync(run).filter((f) => f.includes('.tmp-'));
      const r = fs.existsSync(path.join(run, 'last.ckpt')) ? runCli('train', ['--resume', run]) : train(['--model', 'net', '--epochs', '3', '--out', run]);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(fs.readdirSync(run).filter((f) => f.includes('.tmp-')), [], `left by kill -9: ${left.join(', ') || 'none caught'}`);
    });

    it('Ctrl-C while rendering leaves no browser profile and no temporary PDF', { skip: renderSkip }, async () => {
      const temp = tmpDir('render-tmp-');
      const out = tmpDir('render-out-');
      const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'report.js'), '--results', fixture, '--out', out],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: temp } });
      const closed = new Promise((resolve) => child.on('close', resolve));
      let stdout = '';
      child.stdout.on('data', (b) => (stdout += b));
      // Stop it while a browser runs: rendering the charts or the PDFs.
      for (let i = 0; i < 600 && !fs.readdirSync(temp).some((f) => /^(mnist-lab-chromium-|puppeteer_dev_chrome_profile-)/.test(f)); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGINT');
      await closed;
      const left = fs.readdirSync(temp).filter((f) => /chromium|puppeteer/.test(f));
      assert.deepEqual(left, [], `left in TMPDIR after: ${stdout.slice(-300)}`);
      assert.deepEqual(fs.readdirSync(out).filter((f) => f.includes('.tmp-')), []);
    });
  });

  describe('9. exit codes and messages', () => {
    it('bad options exit 2, as --help says', () => {
      for (const [cli, args] of [['train', ['--epochs', 'x']], ['report', ['--workers', '1']], ['runs', ['--no-such-option']], ['bench', ['--steps', '0']]] as const) {
        const r = runCli(cli, [...args]);
        assert.equal(r.status, 2, `${cli} ${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr, /^error: /m);
      }
      assert.equal(runCli('train', ['--help']).status, 0);
    });

    it('a checkpoint of other shapes is named by its shapes, not dumped value by value', () => {
      // fc's weights under the name of cnn-small: predict builds cnn-small and cannot fit them.
      const ckpt = path.join(finished, 'last.ckpt');
      const header = headerOf(ckpt).trimEnd().replace('"model":"fc"', '"model":"cnn-small"');
      assert.match(header, /"model":"cnn-small"/);
      const file = withHeader(ckpt, header);
      const r = runCli('predict', ['--checkpoint', file, '--index', '0']);
      assertUserError(r, 2, /a checkpoint of model 'cnn-small' \(4 weights: 784x128, 128, 128x10…\), but this version builds 'cnn-small' \(\d+ weights: .*weight 1 is 784x128 in the file, .* in the model/);
      assert.ok(r.stderr.length < 600, `${r.stderr.length} characters`);
    });

    it('a .gz with flipped bytes is called damaged; a cut one truncated', () => {
      const data = writeDataFolder(tmpDir('gz-'), 40, 20, true);
      const file = path.join(data, `${MNIST_FILES.trainImages}.gz`);
      const good = fs.readFileSync(file);
      const flipped = Buffer.from(good);
      for (let i = 20; i < 40; i++) flipped[i] ^= 0xff;
      fs.writeFileSync(file, flipped);
      assertUserError(train(['--data', data, '--epochs', '1', '--out', path.join(tmpDir(), 'r')]), 2, /its compressed bytes are damaged/);
      fs.writeFileSync(file, good.subarray(0, good.length - 30));
      assertUserError(train(['--data', data, '--epochs', '1', '--out', path.join(tmpDir(), 'r')]), 2, /it is truncated/);
      assert.ok(zlib.gunzipSync(good).length > 0);
    });

    it('a folder name with HTML in it is printed as text in the profiling PDF', { skip: renderSkip }, () => {
      const sweep = path.join(tmpDir('html-'), 'study <b>bold</b>');
      fs.cpSync(fixture, sweep, { recursive: true });
      const out = tmpDir('html-out-');
      const r = runCli('report', ['--results', sweep, '--out', out]);
      assert.equal(r.status, 0, r.stderr);
      const text = execFileSync('pdftotext', [path.join(out, 'profiling.pdf'), '-'], { encoding: 'utf8' });
      assert.match(text, /study <b>bold<\/b>/);
    });
  });
});
