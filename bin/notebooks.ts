#!/usr/bin/env node
/**
 * `npm run notebooks [-- NAMES...]`: executes the notebooks headless with the tslab kernel
 * and writes the executed copies (with their outputs) under the run's folder. Stops at the
 * first failing cell, printing the notebook, the cell and the real error message.
 */
import fs from 'node:fs';
import path from 'node:path';
import { command, positiveInt } from '../lib/util/cli-options';
import { runMain, UserError } from '../lib/util/errors';
import { findJupyterPython, executeNotebook, installKernel } from '../lib/notebook/jupyter';
import { projectRoot, runsRoot, timestampName } from '../lib/util/paths';

runMain(async () => {
  const program = command('notebooks')
    .description('Execute the notebooks in notebooks/ headless (all, or the ones named) with the tslab kernel.')
    .argument('[names...]', 'notebook names or prefixes, e.g. 01 02-training')
    .option('--out <dir>', 'folder for the executed copies (default: runs/notebooks/<timestamp>)')
    .option('--timeout <s>', 'time limit per cell, seconds', positiveInt, 1800)
    .addHelpText('after', `
Parameters: EPOCHS, WORKERS (e.g. 1,8), LIMIT, DATA, MODEL in the environment override each
notebook's parameters cell, e.g.  EPOCHS=1 LIMIT=256 WORKERS=1,2 npm run notebooks
Notebook 04 writes its PDFs beside the executed copies (<out>/report/), never into report/out/.`)
    .parse();
  const o = program.opts();
  const dir = path.join(projectRoot(), 'notebooks');
  const all = fs.readdirSync(dir).filter((f) => f.endsWith('.ipynb')).sort();
  const names: string[] = program.args;
  const chosen = names.length ? all.filter((f) => names.some((n) => f.startsWith(n) || f === n)) : all;
  if (!chosen.length) throw new UserError(`no notebook matches ${names.join(', ')} in ${dir} (have: ${all.join(', ')})`);
  const out = path.resolve(o.out ?? path.join(runsRoot(), 'notebooks', timestampName()));
  const python = findJupyterPython();
  installKernel(python);
  const log = (s: string) => process.stdout.write(`${s}\n`);
  log(`Executing ${chosen.length} notebook(s) with ${python} and the tslab kernel; copies in ${out}`);
  for (const name of chosen) {
    log(`- ${name} ...`);
    // NOTEBOOK_OUT: where a notebook writes what it makes (04's PDFs), beside the executed copies.
    const run = executeNotebook(path.join(dir, name), path.join(out, name), python, { NOTEBOOK_OUT: out }, o.timeout);
    if (!run.ok) throw new UserError(`${run.error}\n(outputs up to the failure: ${run.dest})`, 1);
    log(`  ok in ${run.seconds.toFixed(1)} s → ${run.dest}`);
  }
  log('All notebooks ran.');
});
