/**
 * Renders both PDFs from a stored small sweep (test/fixtures/sweep-small, made with
 * `npm run profile -- --workers 1,8 --epochs 2 --limit 192`) and checks them with
 * poppler: text, numbers equal to the inputs, metadata, fonts, pages not blank.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
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
});
