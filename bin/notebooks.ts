#!/usr/bin/env node
/**
 * `npm run notebooks [-- NOTEBOOKS...]`: executes the shipped notebooks, or any .ipynb given by
 * path, headless with the project's kernel and writes the executed copies (with their outputs
 * and execution counts) under the run's folder. Stops at the first failing cell, printing the
 * notebook, the cell (its position and In [N]) and the real error message.
 */
import fs from 'node:fs';
import path from 'node:path';
import { command, positiveInt } from '../lib/util/cli-options';
import { runMain, UserError } from '../lib/util/errors';
import { findJupyterPython, executeNotebook, installKernel } from '../lib/notebook/jupyter';
import { checkReadableFile } from '../lib/util/path-checks';
import { projectRoot, runsRoot, timestampName } from '../lib/util/paths';

runMain(async () => {
  const program = command('notebooks')
    .description('Execute notebooks headless with the project\'s TypeScript kernel (tslab + line profiler): the ones in notebooks/ ' +
      '(all, or the ones named), or any .ipynb file of your own.')
    .argument('[notebooks...]', 'names or prefixes in notebooks/ (01 02-training), or paths to .ipynb files (notebooks-mine/study.ipynb)')
    .option('--out <dir>', 'folder for the executed copies (default: runs/notebooks/<timestamp>)')
    .option('--timeout <s>', 'time limit per cell, seconds', positiveInt, 1800)
    .addHelpText('after', `
Parameters: EPOCHS, WORKERS (e.g. 1,8), LIMIT, DATA, MODEL in the environment override each
notebook's parameters cell, e.g.  EPOCHS=1 LIMIT=256 WORKERS=1,2 npm run notebooks
Notebook 04 writes its PDFs beside the executed copies (<out>/report/), never into report/out/.`)
    .parse();
  const o = program.opts();
  const chosen = chooseNotebooks(program.args);
  const out = path.resolve(o.out ?? path.join(runsRoot(), 'notebooks', timestampName()));
  const python = findJupyterPython();
  installKernel(python);
  const log = (s: string) => process.stdout.write(`${s}\n`);
  log(`Executing ${chosen.length} notebook(s) with ${python} and the tslab kernel; copies in ${out}`);
  for (const source of chosen) {
    const name = path.basename(source);
    log(`- ${source} ...`);
    // NOTEBOOK_OUT: where a notebook writes what it makes (04's PDFs), beside the executed copies.
    const run = executeNotebook(source, path.join(out, name), python, { NOTEBOOK_OUT: out }, o.timeout);
    if (!run.ok) throw new UserError(`${run.error}\n(outputs up to the failure: ${run.dest})`, 1);
    log(`  ok in ${run.seconds.toFixed(1)} s → ${run.dest}`);
  }
  log('All notebooks ran.');
});

/**
 * The notebooks to run: a path to an .ipynb file as given (relative to where npm was started),
 * else a name or prefix of the shipped ones in notebooks/; none given: all shipped ones.
 */
function chooseNotebooks(args: string[]): string[] {
  const dir = path.join(projectRoot(), 'notebooks');
  const shipped = fs.readdirSync(dir).filter((f) => f.endsWith('.ipynb')).sort();
  if (!args.length) return shipped.map((f) => path.join(dir, f));
  const chosen: string[] = [];
  for (const arg of args) {
    if (arg.endsWith('.ipynb') || arg.includes(path.sep)) {
      // npm runs scripts in the project's root; INIT_CWD is where the user typed the command.
      const file = path.resolve(process.env.INIT_CWD ?? process.cwd(), arg);
      checkReadableFile('notebook', file);
      checkFindsThePackage(file);
      chosen.push(file);
      continue;
    }
    const matches = shipped.filter((f) => f.startsWith(arg));
    if (!matches.length) throw new UserError(`no notebook '${arg}' in ${dir} (have: ${shipped.join(', ')}); give a path ending in .ipynb for a notebook of your own`);
    chosen.push(...matches.map((f) => path.join(dir, f)));
  }
  return [...new Set(chosen)];
}

/**
 * The kernel runs in the notebook's folder and resolves imports from there: a notebook outside
 * the project that imports the lab fails at its first cell with "Cannot find module". Said
 * before starting, with the fix.
 */
function checkFindsThePackage(notebook: string): void {
  const name = 'mnist-profiling-lab';
  if (!fs.readFileSync(notebook, 'utf8').includes(name)) return;
  const dir = path.dirname(notebook);
  // Walked up by hand: require.resolve from here would find the package by its own name (a self-reference).
  for (let up = dir; ; up = path.dirname(up)) {
    if (fs.existsSync(path.join(up, 'node_modules', name, 'package.json'))) return;
    if (path.dirname(up) === up) break;
  }
  throw new UserError(`notebook ${notebook} imports ${name}, which cannot be found from ${dir}: keep your notebooks inside the project ` +
    `(e.g. ${path.join(projectRoot(), 'notebooks-mine')}/), or link the package beside it:\n` +
    `  mkdir -p ${path.join(dir, 'node_modules')} && ln -s ${projectRoot()} ${path.join(dir, 'node_modules', name)}`);
}
