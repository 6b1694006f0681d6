/**
 * Executes every notebook headless through Jupyter (nbclient) with the tslab kernel and
 * tiny parameters, and checks what they show. Skipped, visibly, without Jupyter.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { installKernel, jupyterPath } from '../../lib/notebook/jupyter';
import { projectRoot } from '../../lib/util/paths';
import { runCli, tmpDir } from '../helpers';
import { jupyterPythonOrSkip, joinText, Output } from './jupyter-run';

const { python, skip } = jupyterPythonOrSkip();

const join = joinText;
function outputs(file: string): { text: string; html: string } {
  const nb = JSON.parse(fs.readFileSync(file, 'utf8')) as { cells: { outputs?: Output[] }[] };
  const all = nb.cells.flatMap((c) => c.outputs ?? []);
  return {
    text: all.filter((o) => o.output_type === 'stream').map((o) => join(o.text)).join(''),
    html: all.map((o) => join(o.data?.['text/html'])).join('\n'),
  };
}
/** A notebook for the project's kernel: a markdown title, then one code cell per source. */
function notebookOf(sources: string[]): string {
  const cell = (src: string) => ({ cell_type: 'code', id: Math.random().toString(16).slice(2, 10), metadata: {}, execution_count: null, outputs: [], source: src });
  return JSON.stringify({
    cells: [{ cell_type: 'markdown', id: 'title', metadata: {}, source: '# Mine' }, ...sources.map(cell)],
    metadata: { kernelspec: { name: 'tslab', display_name: 'TypeScript', language: 'typescript' } }, nbformat: 4, nbformat_minor: 5,
  });
}

// The project's kernel (notebook/kernel.js) or tslab's own.
const kernels = () => new Set(spawnSync('pgrep', ['-f', '(tslab/bin/tslab|notebook/kernel\\.js) kernel'], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean));

describe('notebooks (headless, real Jupyter + tslab)', { skip }, () => {
  const out = tmpDir('notebooks-');

  it('npm run notebooks executes all four with the test parameters and writes executed copies', () => {
    // The deliverables of npm run report are never replaced by a notebook.
    const deliverables = path.join(projectRoot(), 'report', 'out');
    const snapshot = () => (fs.existsSync(deliverables) ? fs.readdirSync(deliverables).sort().map((f) => {
      const st = fs.statSync(path.join(deliverables, f));
      return `${f}:${st.size}:${st.mtimeMs}`;
    }).join('|') : 'absent');
    const before = snapshot();
    const r = runCli('notebooks', ['--out', out], { EPOCHS: '1', LIMIT: '256', WORKERS: '1,2' }, 900_000);
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /All notebooks ran\./);
    const names = ['01-architecture', '02-training', '03-workers-profiling', '04-report'];
    for (const n of names) assert.ok(fs.existsSync(path.join(out, `${n}.ipynb`)), n);

    const arch = outputs(path.join(out, '01-architecture.ipynb'));
    assert.match(arch.text, /Total params: 3,274,634/);
    assert.match(arch.html, /<table class="dataframe">[\s\S]*Conv2d-1/);
    assert.match(arch.html, /<svg[\s\S]*Conv2d-1/);

    const train = outputs(path.join(out, '02-training.ipynb'));
    assert.match(train.text, /Final test accuracy: \d+\.\d\d% \(\d+\/2000\) after 1 epochs on wasm/);
    assert.match(train.html, /class="mnist-lab-chart"><img alt="Loss per epoch" src="data:image\/svg\+xml;base64,/);
    assert.match(train.html, /Test digits: predicted \(probability\), true label/);
    assert.match(train.html, /Confusion matrix \(rows: true, columns: predicted\)/);

    const prof = outputs(path.join(out, '03-workers-profiling.ipynb'));
    assert.match(prof.html, /Timer unit: 1e-06 s/);
    assert.match(prof.html, /<table class="dataframe"><thead><tr><th>function<\/th><th>line<\/th><th>contents<\/th><th>time_w1<\/th><th>time_w2<\/th>/);
    assert.match(prof.html, /Plotly\.newPlot/);
    assert.match(prof.text, /Speedup of 2 over 1 workers: \d+\.\d\d×/);
    // Inside the workers: the timeline chart, the per-thread table and each worker's line-profile figures.
    assert.match(prof.html, /Every thread during a few training steps/);
    assert.match(prof.html, /<th>thread<\/th><th>busy<\/th><th>waiting<\/th>[\s\S]*loader worker 2/);
    assert.match(prof.html, /<th>thread<\/th><th>batches<\/th><th>build_s<\/th>[\s\S]*all workers/);
    assert.match(prof.html, /Function: buildBatch at line/);
    // A hand-written loop in a cell, line-profiled by the project kernel, 1 and 2 workers side by side.
    assert.match(prof.html, /<div style="display:flex[^"]*"><div style="flex:1;min-width:0"><h4>1 worker \(mean loss \d+\.\d{4}\)<\/h4><p[^>]*><b>Function: myTrainingLoop<\/b> at line \d+ of <code>&lt;cell \d+&gt;<\/code>[\s\S]*<h4>2 workers[\s\S]*for await \(const batch of loader\) \{/);
    assert.doesNotMatch(prof.html, /Whole-function timing only/);

    const report = outputs(path.join(out, '04-report.ipynb'));
    assert.match(report.html, /architecture\.pdf[\s\S]*profiling\.pdf/);
    for (const f of ['architecture.pdf', 'profiling.pdf']) assert.ok(fs.existsSync(path.join(out, 'report', f)), `${f} beside the executed copies`);
    assert.equal(snapshot(), before, 'report/out/ is as it was');
  });

  it('npm run notebooks -- PATH runs a notebook of one\'s own: execution counts, the failing cell named, no kernel left running', () => {
    installKernel(python);
    const before = kernels();
    const dir = tmpDir('nb-fail-');
    const source = path.join(dir, 'mine', 'broken.ipynb');
    fs.mkdirSync(path.dirname(source));
    fs.writeFileSync(source, notebookOf(['const a = 1;', 'console.log("second " + a);',
      "throw new Error('the data folder /nope does not exist');", 'console.log("never")']));
    const out = path.join(dir, 'out');
    const r = runCli('notebooks', [source, '--out', out]);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /broken\.ipynb: cell 3 \(In \[3\]\) failed; the cells after it were not run:\n--- cell source ---\nthrow new Error/);
    assert.match(r.stderr, /--- error ---[\s\S]*Error: the data folder \/nope does not exist/);
    const nb = JSON.parse(fs.readFileSync(path.join(out, 'broken.ipynb'), 'utf8')) as { cells: { execution_count?: number | null }[] };
    assert.deepEqual(nb.cells.map((c) => c.execution_count ?? null), [null, 1, 2, 3, null], 'In [N] as the kernel counted; the markdown cell has none');
    assert.deepEqual([...kernels()].filter((pid) => !before.has(pid)), [], 'no tslab kernel of ours left running');
    const missing = runCli('notebooks', [path.join(dir, 'nope.ipynb')]);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /notebook .*nope\.ipynb: no such file/);
  });

  it('a student\'s own notebook, start to finish: decorated method, redefinition, profiled library run, chart, failing cell', () => {
    installKernel(python);
    const dir = tmpDir('nb-student-');
    const source = path.join(dir, 'notebooks-mine', 'mine.ipynb');
    fs.mkdirSync(path.dirname(source));
    const run = path.join(dir, 'run');
    fs.writeFileSync(source, notebookOf([
      `import { DEFAULTS, runTraining, profile } from 'mnist-profiling-lab';
import { lprun, notebookProgress, showPlot } from 'mnist-profiling-lab/notebook';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));`,
      `class Trainer {
  @profile
  async epoch(n: number) {
    let total = 0;
    for (let i = 0; i < n; i++) {
      await sleep(5);
      total += i;
    }
    return total;
  }
}
await lprun(() => new Trainer().epoch(3), [Trainer.prototype.epoch]);`,
      `const work = profile(function work(n: number) { let s = 0; for (let i = 0; i < n; i++) s += i; return s; });
await lprun(() => work(10), [work]);`,
      `const work = profile(function work(n: number) {
  let s = 1;
  for (let i = 1; i <= n; i++) s *= i;
  return s;
});
await lprun(() => work(5), [work]);`,
      `const result = await runTraining({ ...DEFAULTS, model: 'fc', epochs: 1, limit: 128, workers: 1, computeThreads: 1, backend: 'wasm',
  out: ${JSON.stringify(run)}, profile: true }, notebookProgress());
showPlot({ data: [{ type: 'scatter', mode: 'lines+markers', name: 'train loss', x: result.metrics.map((m) => m.epoch), y: result.metrics.map((m) => m.train_loss) }],
  layout: { title: { text: 'Training loss' }, width: 500, height: 300 } });`,
      "throw new RangeError('--limit 0: expected at least 1 image');",
      'console.log("never printed");',
    ]));
    const out = path.join(dir, 'out');
    // Outside the project the package cannot be found from the notebook's folder: said before any cell runs, with the fix.
    const unlinked = runCli('notebooks', [source, '--out', out]);
    assert.equal(unlinked.status, 2, unlinked.stderr);
    assert.match(unlinked.stderr, /imports mnist-profiling-lab, which cannot be found from .*notebooks-mine: keep your notebooks inside the project[\s\S]*ln -s /);
    fs.mkdirSync(path.join(dir, 'notebooks-mine', 'node_modules'));
    fs.symlinkSync(projectRoot(), path.join(dir, 'notebooks-mine', 'node_modules', 'mnist-profiling-lab'), 'dir');
    const r = runCli('notebooks', [source, '--out', out], {}, 600_000);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /mine\.ipynb: cell 6 \(In \[6\]\) failed; the cells after it were not run:\n--- cell source ---\nthrow new RangeError/);
    assert.match(r.stderr, /--- error ---[\s\S]*RangeError: --limit 0: expected at least 1 image/);

    const nb = JSON.parse(fs.readFileSync(path.join(out, 'mine.ipynb'), 'utf8')) as { cells: { execution_count?: number | null; outputs?: Output[] }[] };
    assert.deepEqual(nb.cells.map((c) => c.execution_count ?? null), [null, 1, 2, 3, 4, 5, 6, null], 'In [N] for each cell run, none for the one after the failure');
    const html = (n: number) => (nb.cells[n].outputs ?? []).map((o) => join(o.data?.['text/html'])).join('\n');
    assert.match(html(2), /Function: Trainer\.epoch<\/b> at line 2 of <code>&lt;cell 2&gt;<\/code>/, 'the decorated method, named by In [2]');
    assert.match(html(3), /Function: work<\/b> at line 1 of <code>&lt;cell 3&gt;<\/code>/);
    assert.match(html(4), /Function: work<\/b> at line 1 of <code>&lt;cell 4&gt;<\/code>[\s\S]*s \*= i/, 'the redefinition, with its own lines');
    assert.doesNotMatch(html(4), /s \+= i/, 'the old definition\'s stats are gone');
    assert.match(html(5), /<b>Function: trainEpoch<\/b>[\s\S]*<b>Function: trainStep<\/b>/, 'the library run\'s whole line profile');

    const chart = (nb.cells[5].outputs ?? []).find((o) => o.data?.['application/vnd.plotly.v1+json']);
    assert.ok(chart, 'the chart is a Plotly MIME bundle');
    assert.deepEqual(Object.keys(chart.data!).sort(), ['application/vnd.plotly.v1+json', 'image/svg+xml', 'text/html', 'text/plain']);
    assert.match(join(chart.data!['image/svg+xml']), /<svg[\s\S]*Training loss/);
    assert.match(join(chart.data!['text/html']), /<img alt="Training loss" src="data:image\/svg\+xml;base64,/);
    const size = fs.statSync(path.join(out, 'mine.ipynb')).size;
    assert.ok(size < 1_000_000, `no plotly.js inlined (${size} bytes)`);
  });

  it('nbconvert with the project kernel: a failure names its error; --allow-errors runs the cells after it', () => {
    installKernel(python);
    const dir = tmpDir('nb-convert-');
    const source = path.join(dir, 'errors.ipynb');
    fs.writeFileSync(source, notebookOf(["throw new TypeError('bad shape 3x4');", 'console.log("after the failure");']));
    const env = { ...process.env, JUPYTER_PATH: jupyterPath() };
    const convert = (...extra: string[]) => spawnSync(python, ['-m', 'nbconvert', '--to', 'notebook', '--execute', '--output-dir', dir, '--output', 'run', ...extra, source],
      { encoding: 'utf8', env, timeout: 300_000 });
    const stopped = convert();
    assert.notEqual(stopped.status, 0);
    assert.match(stopped.stderr, /TypeError: bad shape 3x4/, 'the error, not "<Error>: " with nothing after it');
    const allowed = convert('--allow-errors');
    assert.equal(allowed.status, 0, allowed.stderr);
    const nb = JSON.parse(fs.readFileSync(path.join(dir, 'run.ipynb'), 'utf8')) as { cells: { execution_count: number | null; outputs: Output[] }[] };
    assert.match(nb.cells.slice(1).map((c) => c.outputs.map((o) => join(o.text)).join('')).join(''), /after the failure/);
    assert.deepEqual(nb.cells.slice(1).map((c) => c.execution_count), [1, 2]);
  });

  it('npm run jupyter starts the classic notebook on notebooks/ with the TypeScript kernel, as a user or as root', async () => {
    const port = 18000 + (process.pid % 1000);
    const child = spawn(process.execPath, [path.join(projectRoot(), 'dist', 'bin', 'jupyter.js'), '--no-browser', `--port=${port}`, '--ServerApp.token=', '--NotebookApp.token='],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b) => (output += b));
    child.stderr.on('data', (b) => (output += b));
    const closed = new Promise((r) => child.on('close', r));
    try {
      let specs: { kernelspecs?: Record<string, unknown> } = {};
      for (let i = 0; i < 120 && !specs.kernelspecs; i++) {
        await new Promise((r) => setTimeout(r, 250));
        try {
          specs = await (await fetch(`http://127.0.0.1:${port}/api/kernelspecs`)).json() as typeof specs;
        } catch { /* not up yet */ }
      }
      assert.ok(specs.kernelspecs && 'tslab' in specs.kernelspecs, `the tslab kernel is offered:\n${output}`);
      const tree = await (await fetch(`http://127.0.0.1:${port}/api/contents`)).json() as { content: { name: string }[] };
      assert.ok(tree.content.some((f) => f.name === '01-architecture.ipynb'), 'it serves notebooks/');
    } finally {
      child.kill('SIGINT');
      await closed;
    }
  });
});
