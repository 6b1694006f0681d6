/**
 * The public entry: notebooks import only from it, and a script outside the repository
 * reaches it by the package's name (as another project that installs the lab would).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { tmpDir } from '../helpers';

const root = projectRoot();
const name = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name as string;

describe('public entry', () => {
  it('the notebooks import the lab only by its name, never by a path into dist/ or lib/', () => {
    const notebooks = fs.readdirSync(path.join(root, 'notebooks')).filter((f) => f.endsWith('.ipynb'));
    assert.ok(notebooks.length >= 4);
    for (const file of notebooks) {
      const nb = JSON.parse(fs.readFileSync(path.join(root, 'notebooks', file), 'utf8')) as { cells: { cell_type: string; source: string | string[] }[] };
      const code = nb.cells.filter((c) => c.cell_type === 'code').map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source)).join('\n');
      assert.doesNotMatch(code, /from '(\.\.\/)+(dist|lib|report)\//, `${file} imports by path`);
      assert.match(code, new RegExp(`from '${name}(/notebook|/report)?'`), `${file} imports the entry`);
    }
  });

  it('a script in another folder builds the Net by the package name, counts 3,274,634 parameters and trains one batch', () => {
    // What `npm install <this folder>` gives another project: node_modules/<name> pointing here.
    const project = tmpDir('entry-user-');
    fs.mkdirSync(path.join(project, 'node_modules'));
    fs.symlinkSync(root, path.join(project, 'node_modules', name), 'dir');
    const script = path.join(project, 'use-the-lab.js');
    fs.writeFileSync(script, `
      const lab = require('${name}');
      const { summarize } = lab;
      (async () => {
        const backend = await lab.initBackend('wasm');
        const model = lab.createModel('net', 1);
        const params = summarize(model).totalParams;
        const split = (await lab.loadData({ data: 'embedded', download: false, limit: 64 }, () => {})).train;
        const loader = new lab.DataLoader(split, { batchSize: 64, shuffle: true, seed: 1 });
        const optimizer = lab.createOptimizer('adadelta', 1.0, 0);
        const target = { model, optimizer, vars: lab.trainableVariables(model), reducer: lab.DataParallel.single() };
        for await (const batch of loader) {
          const before = model.getWeights()[0].dataSync().slice();
          const loss = await lab.trainStep(target, { ...batch, weight: 1 });
          const after = model.getWeights()[0].dataSync();
          console.log(JSON.stringify({ backend: backend.name, params, loss: (await loss.data())[0], moved: after.some((v, i) => v !== before[i]) }));
        }
        require('${name}/notebook');
        console.log(typeof require('${name}/report').buildReports);
      })().catch((e) => { console.error(e); process.exit(1); });
    `);
    const r = spawnSync(process.execPath, [script], { cwd: project, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const [result, reportEntry] = r.stdout.trim().split('\n');
    const out = JSON.parse(result);
    assert.equal(out.backend, 'wasm');
    assert.equal(out.params, 3_274_634);
    assert.ok(out.loss > 1 && out.loss < 4, `loss ${out.loss}`);
    assert.equal(out.moved, true, 'the step changed the weights');
    assert.equal(reportEntry, 'function');
  });
});
