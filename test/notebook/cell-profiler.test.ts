/**
 * %lprun-style line profiling of functions written in notebook cells, through real Jupyter
 * (nbclient) with the project's kernel; and the stock tslab kernel, which keeps
 * whole-function timing. Skipped, visibly, without Jupyter.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { installKernel, jupyterPath } from '../../lib/notebook/jupyter';
import { instrumentCell } from '../../lib/notebook/cell-profiler';
import { projectRoot } from '../../lib/util/paths';
import { tmpDir } from '../helpers';
import { jupyterPythonOrSkip, joinText, Output } from './jupyter-run';

const { python, skip } = jupyterPythonOrSkip();

/** The cells of the test notebook; each code cell runs with the next execution count (1, 2, ...). */
const CELLS = [
  // 1
  `import { profile, loadEmbedded, limitTrain, DataLoader, createModel, createOptimizer, trainStep, trainableVariables, DataParallel } from 'mnist-profiling-lab';
import { lprun, lineProfileStats, showLineProfile } from 'mnist-profiling-lab/notebook';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
async function* slowItems(n: number) { for (let i = 0; i < n; i++) { await sleep(30); yield i; } }
function busy(ms: number) { const t = performance.now(); while (performance.now() - t < ms); }
const dump = (label: string, fns: (Function | string)[]) => console.log(label + ' ' + JSON.stringify(lineProfileStats(fns).map((s) =>
  ({ file: s.meta.file, name: s.meta.name, line: s.meta.line, whole: !!s.meta.wholeFunction, calls: s.calls, lines: [...s.lines] }))));`,
  // 2: a loop written in a cell
  `const myLoop = profile(async function myLoop(n: number) {
  let total = 0;
  for await (const x of slowItems(n)) {
    busy(5);
    total += x;
  }
  return total;
});`,
  // 3: top-level await, lprun shows the table
  `const total = await lprun(() => myLoop(5), [myLoop]);
console.log('total ' + total);`,
  // 4: a later cell calls the function again; the stats add up
  `await lprun(() => myLoop(3), [myLoop]);
dump('STATS4', [myLoop]);`,
  // 5: redefined: its stats start over
  `const myLoop = profile(async function myLoop(n: number) {
  let total = 0;
  for await (const x of slowItems(n)) {
    total += x;
  }
  busy(2);
  return total;
});
await lprun(() => myLoop(2), [myLoop]);
dump('STATS5', [myLoop]);`,
  // 6: a hand-written training loop beside lib's own profiled step
  `const data = limitTrain(loadEmbedded(), 128);
const model = createModel('fc', 1);
const target = { model, optimizer: createOptimizer('adadelta', 1, 0), vars: trainableVariables(model), reducer: DataParallel.single() };
const train = profile(async function train(loader: DataLoader) {
  for await (const batch of loader) {
    const loss = await trainStep(target, { images: batch.images, labels: batch.labels, size: batch.size, weight: 1 });
    loss.dispose();
  }
});
await lprun(() => train(new DataLoader(data.train, { batchSize: 64, numWorkers: 1 })), [train, 'trainStep']);
dump('STATS6', [train, 'trainStep']);`,
  // 7: what cannot be instrumented says why
  `const quick = profile((x: number) => x + 1);
await lprun(() => quick(1), [quick]);
dump('STATS7', [quick]);`,
];

function notebook(cells: string[], kernel: string): string {
  return JSON.stringify({
    cells: cells.map((source) => ({ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source })),
    metadata: { kernelspec: { name: kernel, display_name: 'TypeScript', language: 'typescript' } }, nbformat: 4, nbformat_minor: 5,
  });
}

const join = joinText;

/** Executes the cells in a temporary folder that has the package installed (node_modules link), with a kernel. */
function execute(cells: string[], kernel: string): { cells: { text: string; html: string; stderr: string; count: number | null }[]; status: number | null; stderr: string } {
  const dir = tmpDir('cell-profile-');
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(projectRoot(), path.join(dir, 'node_modules', 'mnist-profiling-lab'), 'dir');
  const source = path.join(dir, 'lprun.ipynb');
  const dest = path.join(dir, 'executed.ipynb');
  fs.writeFileSync(source, notebook(cells, kernel));
  const r = spawnSync(python, [path.join(projectRoot(), 'scripts', 'execute_notebook.py'), source, dest, '--timeout', '300', '--kernel', kernel],
    { encoding: 'utf8', env: { ...process.env, JUPYTER_PATH: jupyterPath() }, timeout: 400_000 });
  assert.ok(fs.existsSync(dest), `no executed copy: ${r.stderr}`);
  const nb = JSON.parse(fs.readFileSync(dest, 'utf8')) as { cells: { outputs?: Output[]; execution_count: number | null }[] };
  return {
    status: r.status, stderr: r.stderr,
    cells: nb.cells.map((c) => ({
      text: (c.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stdout').map((o) => join(o.text)).join(''),
      stderr: (c.outputs ?? []).filter((o) => o.output_type === 'stream' && o.name === 'stderr').map((o) => join(o.text)).join(''),
      html: (c.outputs ?? []).map((o) => join(o.data?.['text/html'])).join('\n'),
      count: c.execution_count,
    })),
  };
}

type Dumped = { file: string; name: string; line: number; whole: boolean; calls: number; lines: [number, { hits: number; seconds: number }][] }[];
const dumped = (text: string, label: string): Dumped => JSON.parse(new RegExp(`${label} (.*)`).exec(text)![1]);

describe('instrumenting a cell', () => {
  it('rewrites profile(function ...) with the cell\'s lines and name; an arrow function keeps whole-function timing and says why', () => {
    const c = instrumentCell('const f = profile(function f(n: number) {\n  return n + 1;\n});\nconst g = profile((x: number) => x);\n', '<cell 3>');
    assert.ok(c.changed);
    assert.match(c.code, /register\(\{ id: "<cell 3>:1:f", file: "<cell 3>", name: "f", line: 1/);
    assert.match(c.code, /lp\$frame\.line\(2\);\s+return n \+ 1;/);
    assert.deepEqual(c.skipped.map((s) => [s.name, s.line]), [['g', 4]]);
    assert.match(c.code, /profile\(\(x: number\) => x, undefined, "an arrow function[^"]*", "g"\)/);
    assert.equal(instrumentCell('const x = 1;', '<cell 1>').changed, false);
  });
});

describe('line-profiling notebook cells (%lprun), real Jupyter', { skip }, () => {
  it('the project kernel times each line of a cell\'s function, charges the loop header its waits, restarts a redefined function, shows lib\'s lines beside', () => {
    installKernel(python);
    const r = execute(CELLS, 'tslab');
    assert.equal(r.status, 0, r.stderr);
    const [, , c3, c4, c5, c6, c7] = r.cells;
    // The table: the cell named by its execution count, its source lines with hits and times, a bar per line.
    assert.match(c3.html, /<b>Function: myLoop<\/b> at line 1 of <code>&lt;cell 2&gt;<\/code>/);
    assert.match(c3.html, /<td style="text-align:right">3<\/td><td style="text-align:right">6<\/td>[\s\S]*?for await \(const x of slowItems\(n\)\) \{/);
    assert.match(c3.html, /<td style="text-align:right">4<\/td><td style="text-align:right">5<\/td>[\s\S]*?busy\(5\);/);
    assert.match(c3.html, /Timer unit: 1e-06 s[\s\S]*File: &lt;cell 2&gt;[\s\S]*Function: myLoop at line 1/);
    assert.match(c3.text, /total 10/);
    // Both calls added up; the header (line 3) holds the 30 ms waits, the busy line its 5 ms.
    const [s4] = dumped(c4.text, 'STATS4');
    const lines4 = new Map(s4.lines);
    assert.equal(s4.file, '<cell 2>');
    assert.equal(s4.calls, 2);
    assert.equal(lines4.get(3)!.hits, 10, '8 items and 2 ends of the loop');
    assert.equal(lines4.get(4)!.hits, 8);
    assert.ok(lines4.get(3)!.seconds >= 8 * 0.028, `header ${lines4.get(3)!.seconds} s includes the waits`);
    assert.ok(lines4.get(4)!.seconds >= 8 * 0.005 && lines4.get(4)!.seconds < lines4.get(3)!.seconds, `busy line ${lines4.get(4)!.seconds} s`);
    // Redefined in cell 5: only the new definition, one call.
    const s5 = dumped(c5.text, 'STATS5');
    assert.equal(s5.length, 1);
    assert.equal(s5[0].file, '<cell 5>');
    assert.equal(s5[0].calls, 1);
    assert.equal(new Map(s5[0].lines).get(3)!.hits, 3);
    assert.match(c5.html, /busy\(2\);/);
    // The cell's loop beside lib's trainStep (built by the project, with its file and lines).
    const s6 = dumped(c6.text, 'STATS6');
    assert.deepEqual(s6.map((s) => [s.file, s.name, s.whole]), [['<cell 6>', 'train', false], ['lib/training/step.ts', 'trainStep', false]]);
    assert.equal(s6[1].calls, 2, '128 samples in batches of 64');
    assert.match(c6.html, /Function: train<\/b>[\s\S]*Function: trainStep<\/b> at line \d+ of <code>lib\/training\/step.ts<\/code>/);
    // An arrow function: whole-function timing, and why.
    const [s7] = dumped(c7.text, 'STATS7');
    assert.equal(s7.whole, true);
    assert.match(c7.stderr, /line profiler: quick \(line 1\) is timed as a whole: an arrow function/);
    assert.match(c7.html, /whole-function timing only: an arrow function/);
  });

  it('@profile on a class method in a cell (tslab compiles legacy decorators) times its lines; In [N] matches <cell N>', () => {
    installKernel(python);
    const r = execute([CELLS[0], `class Trainer {
  scale = 2;
  @profile
  async epoch(n: number) {
    let total = 0;
    for await (const x of slowItems(n)) {
      busy(3);
      total += x * this.scale;
    }
    return total;
  }
}`, `const trainer = new Trainer();
console.log('total ' + await lprun(() => trainer.epoch(4), [Trainer.prototype.epoch]));
dump('STATSD', ['epoch']);`], 'tslab');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.cells.map((c) => c.count), [1, 2, 3], 'execution counts recorded');
    assert.match(r.cells[2].text, /total 12/, 'the method keeps its this');
    const [s] = dumped(r.cells[2].text, 'STATSD');
    assert.deepEqual([s.file, s.name, s.whole, s.calls], ['<cell 2>', 'Trainer.epoch', false, 1], 'named after In [2], the cell that defined it');
    const lines = new Map(s.lines);
    assert.equal(lines.get(6)!.hits, 5, 'the loop header: 4 items and the end');
    assert.equal(lines.get(7)!.hits, 4);
    assert.match(r.cells[2].html, /Function: Trainer\.epoch<\/b> at line 3 of <code>&lt;cell 2&gt;<\/code>/);
  });

  it('a profiled library run in a cell shows its line profile whole below the progress, not cut to its last lines', () => {
    installKernel(python);
    const out = path.join(tmpDir('nb-train-'), 'run');
    const r = execute([`import { DEFAULTS, runTraining } from 'mnist-profiling-lab';
import { notebookProgress } from 'mnist-profiling-lab/notebook';
const run = await runTraining({ ...DEFAULTS, model: 'fc', epochs: 1, limit: 128, workers: 1, computeThreads: 1, backend: 'wasm',
  out: ${JSON.stringify(out)}, profile: true }, notebookProgress());
console.log('epochs ' + run.metrics.length);`], 'tslab');
    assert.equal(r.status, 0, r.stderr);
    const [c] = r.cells;
    assert.match(c.text, /epochs 1/);
    const saved = fs.readFileSync(path.join(out, 'line-profile.txt'), 'utf8');
    // Every function's table with its bars, and line_profiler's text as written to the run folder.
    for (const name of ['trainEpoch', 'trainStep']) assert.match(c.html, new RegExp(`<b>Function: ${name}</b> at line \\d+ of <code>lib/training/`));
    assert.match(c.html, /Line profile: below/, 'the progress says where the profile went');
    const pre = /<summary>line_profiler's text<\/summary><pre[^>]*>([\s\S]*?)<\/pre>/.exec(c.html);
    assert.ok(pre, 'the text under the tables');
    const unescape = (h: string) => h.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
    const shown = unescape(pre[1]);
    assert.ok(shown.includes('Function: trainEpoch') && shown.includes('Threads over'), 'the whole text, from the first table to the thread summary');
    assert.equal(shown.trimEnd(), saved.trimEnd(), 'the text of line-profile.txt');
  });

  it('the stock tslab kernel keeps working: whole-function timing with a note', () => {
    // A kernelspec that starts tslab itself, beside the project's.
    const dir = path.join(jupyterPath(), 'kernels', 'tslab-stock');
    fs.mkdirSync(dir, { recursive: true });
    const tslabBin = path.join(path.dirname(require.resolve('tslab/package.json')), 'bin', 'tslab');
    fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv: [process.execPath, tslabBin, 'kernel', '--config-path', '{connection_file}'], display_name: 'tslab (stock)', language: 'typescript' }));
    const r = execute([...CELLS.slice(0, 3), 'dump("STATS", [myLoop]);'], 'tslab-stock');
    assert.equal(r.status, 0, r.stderr);
    const [s] = dumped(r.cells[3].text, 'STATS');
    assert.equal(s.whole, true);
    assert.equal(s.calls, 1);
    assert.match(r.cells[2].html, /Whole-function timing only|whole-function timing only/);
    assert.match(r.cells[2].text, /total 10/);
  });
});

describe('the README\'s %lprun example, run as a cell with the project kernel', { skip }, () => {
  it('shows myLoop\'s table with its lines', () => {
    const readme = fs.readFileSync(path.join(projectRoot(), 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Line-profiling your own cells'));
    const example = /```ts\n([\s\S]*?)```/.exec(section)![1];
    installKernel(python);
    const r = execute([example], 'tslab');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.cells[0].html, /<b>Function: myLoop<\/b> at line 4 of <code>&lt;cell 1&gt;<\/code>/);
    assert.match(r.cells[0].html, /<td style="text-align:right">6<\/td><td style="text-align:right">126<\/td>[\s\S]*?for await \(const batch of loader\)/);
  });
});
