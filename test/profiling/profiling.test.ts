import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';
import { formatText, mergeStats, profile, reset, setProfiling, snapshot, toDataFrame, toRows } from '../../lib/profiling';
import { pyG } from '../../lib/profiling/format';
import { FunctionStats } from '../../lib/profiling/runtime';
import { profileTransformer } from '../../lib/profiling/transformer';
import { projectRoot } from '../../lib/util/paths';
import { tmpDir } from '../helpers';

/** Compiles a module with the profiler's transformer, as the build does, and loads it. */
function compileAndLoad(source: string): Record<string, (...a: unknown[]) => unknown> {
  const root = projectRoot();
  const dir = tmpDir('lp-src-');
  const fileName = path.join(root, 'lib', '__fixture__.ts'); // lives "in lib/" for the relative runtime path
  const out = ts.transpileModule(source, {
    fileName, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    transformers: { before: [profileTransformer({ root })] },
  }).outputText.replace(/require\("\.\/profiling\/runtime"\)/, `require(${JSON.stringify(path.join(root, 'dist', 'lib', 'profiling', 'runtime.js'))})`)
    .replace(/require\("\.\/profiling"\)/, `require(${JSON.stringify(path.join(root, 'dist', 'lib', 'profiling', 'index.js'))})`);
  const file = path.join(dir, 'fixture.js');
  fs.writeFileSync(file, out);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file);
}

const FIXTURE = `import { profile } from './profiling';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function* slowItems(n: number) {
  for (let i = 0; i < n; i++) { await sleep(20); yield i; }
}
export const work = profile(async function work(n: number): Promise<number> {
  let total = 0;
  for await (const item of slowItems(n)) {
    total += item;
    const doubled = [1, 2].map((x) => {
      return x * 2;
    });
    total += doubled.length;
  }
  let k = 0;
  while (k < 3) k++;
  if (total > 1000) {
    total = 0;
  }
  return total + k;
});
export class Trainer {
  @profile
  step(x: number): number {
    const y = x + 1;
    return y * 2;
  }
}
`;

describe('line profiler', () => {
  it("formats numbers as Python's %g", () => {
    assert.equal(pyG(1e-6), '1e-06');
    assert.equal(pyG(8.352891234), '8.35289');
    assert.equal(pyG(0.000649), '0.000649');
    assert.equal(pyG(1234567), '1.23457e+06');
    assert.equal(pyG(0), '0');
  });

  it("prints line_profiler's layout: header, blank columns for lines without hits", () => {
    const s = new FunctionStats({ id: 'x', file: 'lib/x.ts', name: 'f', line: 10, source: ['function f() {', '  a();', '  // note', '  b();', '}'] });
    s.add(11, 0.003, true);
    s.add(13, 0.001, true);
    s.add(13, 0.001, true);
    const expected = [
      'Timer unit: 1e-06 s',
      '',
      'Total time: 0.005 s',
      'File: lib/x.ts',
      'Function: f at line 10',
      '',
      'Line #      Hits         Time  Per Hit   % Time  Line Contents',
      '==============================================================',
      '    10                                           function f() {',
      '    11         1       3000.0   3000.0     60.0    a();',
      '    12                                             // note',
      '    13         2       2000.0   1000.0     40.0    b();',
      '    14                                           }',
      '',
    ].join('\n');
    assert.equal(formatText([s]), expected);
    const rows = toRows([s], { workers: 8, epoch: 2 });
    assert.deepEqual(rows.map((r) => [r.line, r.hits, r.contents, r.workers, r.epoch]), [[11, 1, 'a();', 8, 2], [13, 2, 'b();', 8, 2]]);
    const df = toDataFrame(rows);
    assert.deepEqual(df.columns.slice(0, 8), ['file', 'function', 'line', 'hits', 'time_s', 'per_hit_s', 'percent', 'contents']);
    assert.equal(df.shape[0], 2);
  });

  it('times each TypeScript line, charging the wait for the next item to the for-await header', async () => {
    const mod = compileAndLoad(FIXTURE);
    setProfiling(true);
    reset();
    const result = await (mod.work as (n: number) => Promise<number>)(5);
    assert.equal(result, 0 + 1 + 2 + 3 + 4 + 5 * 2 + 3); // instrumentation changes nothing
    const [stats] = snapshot().filter((s) => s.meta.name === 'work');
    const hits = (line: number) => stats.lines.get(line)?.hits ?? 0;
    const seconds = (line: number) => stats.lines.get(line)?.seconds ?? 0;
    assert.equal(stats.meta.line, 6);
    assert.equal(stats.meta.file, 'lib/__fixture__.ts');
    assert.equal(hits(7), 1); // let total = 0;
    assert.equal(hits(8), 6); // for await: 5 items + the final request, as Python's for line
    assert.equal(hits(9), 5);
    assert.equal(hits(10), 5); // the statement holding the callback
    assert.equal(hits(11), 10); // the callback's own line, 2 calls per iteration
    assert.equal(hits(16), 7); // while condition 4 times (3 true, 1 false) + its one-line body 3 times
    assert.equal(hits(18), 0); // never ran
    assert.ok(seconds(8) > 0.09, `header charged ${seconds(8)} s for 5 waits of 20 ms`);
    const total = [...stats.lines.values()].reduce((n, c) => n + c.seconds, 0);
    assert.ok(Math.abs(total - stats.seconds) < 0.005, 'line times add up to the call time');
    const text = formatText([stats]);
    assert.match(text, /Function: work at line 6\n/);
    assert.match(text, /\n     8         6 +[\d.]+ +[\d.]+ +[\d.]+    for await \(const item of slowItems\(n\)\) \{\n/);
    assert.match(text, /\n    18                                               total = 0;\n/);
  });

  it('instruments @profile methods, and records nothing while off', () => {
    const mod = compileAndLoad(FIXTURE);
    const Trainer = mod.Trainer as unknown as new () => { step(x: number): number };
    setProfiling(false);
    reset();
    assert.equal(new Trainer().step(1), 4);
    assert.deepEqual(snapshot(), []);
    setProfiling(true);
    new Trainer().step(1);
    const [stats] = snapshot().filter((s) => s.meta.name === 'Trainer.step');
    assert.equal(stats.meta.line, 23);
    assert.equal(stats.lines.get(25)?.hits, 1);
    assert.equal(stats.lines.get(26)?.hits, 1);
  });

  it('times a function the build did not see (a notebook cell) as a whole, and says why', async () => {
    setProfiling(true);
    reset();
    // An alias: the build instruments `profile(function ...)` in files it compiles (this
    // test file included); a notebook cell's call never reaches the build.
    const cellProfile = profile;
    const cell = cellProfile(async function fromCell(ms: number) {
      await new Promise((r) => setTimeout(r, ms));
      return ms;
    });
    assert.equal(await cell(30), 30);
    const [stats] = snapshot().filter((s) => s.meta.name === 'fromCell');
    assert.equal(stats.calls, 1);
    assert.ok(stats.seconds >= 0.025);
    assert.match(formatText([stats]), /whole-function timing only\. Line timing needs the function in lib\//);
  });

  it('adds epochs up with mergeStats', () => {
    const meta = { id: 'm', file: 'f.ts', name: 'g', line: 1, source: ['a', 'b'] };
    const a = new FunctionStats(meta);
    a.add(2, 1, true);
    const b = new FunctionStats(meta);
    b.add(2, 2, true);
    const [m] = mergeStats([[a], [b]]);
    assert.deepEqual(m.lines.get(2), { hits: 2, seconds: 3 });
  });
});
