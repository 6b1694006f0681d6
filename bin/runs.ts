#!/usr/bin/env node
/** `npm run runs [-- --compare A B]`: the runs under runs/ as a table, or two runs compared (with an HTML chart). */
import path from 'node:path';
import { command } from '../lib/util/cli-options';
import { runMain, UserError } from '../lib/util/errors';
import { runsRoot } from '../lib/util/paths';
import { checkFolder, checkWritableFile } from '../lib/util/path-checks';
import { compareRuns, findRuns, formatRunsTable } from '../lib/runs/list';

runMain(async () => {
  const program = command('runs')
    .description('List training runs (config, metrics, checkpoints in each run folder), or compare two.')
    .option('--root <dir>', 'where to look for run folders', runsRoot())
    .option('--compare <dirs...>', 'two run folders to compare side by side')
    .option('--html <file>', 'where --compare writes its chart (default: runs/compare.html)')
    .parse();
  const o = program.opts();
  // A --root written on the command line must be there (a typo is not "no runs yet"); the default may not exist yet.
  if (program.getOptionValueSource('root') === 'cli') checkFolder('--root', o.root);
  if (o.compare) {
    if (o.compare.length !== 2) throw new UserError(`--compare takes two run folders, got ${o.compare.length}`);
    for (const dir of o.compare) checkFolder('--compare', dir);
    const html = checkWritableFile('--html', o.html ?? path.join(o.root, 'compare.html'));
    process.stdout.write(`${compareRuns(path.resolve(o.compare[0]), path.resolve(o.compare[1]), html)}\n\nChart: ${html}\n`);
    return;
  }
  const damaged: { dir: string; reason: string }[] = [];
  const runs = findRuns(o.root, damaged);
  if (runs.length) process.stdout.write(`${formatRunsTable(runs, o.root)}\n`);
  else if (!damaged.length) process.stdout.write(`No runs under ${o.root} yet (npm run train writes one).\n`);
  if (damaged.length) {
    process.stderr.write(`\n${damaged.length} damaged run folder${damaged.length === 1 ? '' : 's'}, not listed:\n` +
      damaged.map((d) => `  ${d.reason}`).join('\n') + '\n');
    process.exitCode = 2;
  }
});
