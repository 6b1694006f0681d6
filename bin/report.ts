#!/usr/bin/env node
/** `npm run report`: architecture.pdf and profiling.pdf under report/out/. */
import path from 'node:path';
import { Option } from 'commander';
import { command, positiveInt, workerCounts } from '../lib/util/cli-options';
import { runMain } from '../lib/util/errors';
import { MODEL_NAMES } from '../lib/models';
import { projectRoot } from '../lib/util/paths';
import { checkFolder } from '../lib/util/path-checks';
import { buildReports } from '../report/build';

runMain(async () => {
  const program = command('report')
    .description('Produce report/out/architecture.pdf and report/out/profiling.pdf (runs the worker sweep first if its results are missing).')
    .addOption(new Option('--model <name>', 'model to document and profile').choices(MODEL_NAMES).default('net'))
    .option('--results <dir>', 'use this sweep folder (written by npm run profile, e.g. under Slurm) instead of running one')
    .option('--fresh', 'run the sweep again even if results for this configuration exist', false)
    .option('--workers <list>', 'worker counts to compare', (v: string) => workerCounts(v, 2), [1, 8])
    .option('--epochs <n>', 'epochs per run of the sweep', positiveInt, 5)
    .option('--limit <n>', 'first N training samples only (quick runs)', positiveInt)
    .option('--data <source>', "'embedded' or a folder of MNIST IDX files", 'embedded')
    .option('--out <dir>', 'where the PDFs go', path.join(projectRoot(), 'report', 'out'))
    .addHelpText('after', `
Sweep results are kept in runs/report/<configuration>/ and reused; the PDFs are rebuilt
each time (a few seconds). Chromium is found via PUPPETEER_EXECUTABLE_PATH, puppeteer's own
download, or the system's chromium / google-chrome.

Examples:
  npm run report                                  # 5 epochs x 1 and 8 workers on the embedded digits
  npm run report -- --epochs 1 --limit 640        # a quick version
  npm run report -- --results runs/slurm-1234     # PDFs from a sweep made elsewhere`)
    .parse();
  const o = program.opts();
  checkFolder('--out', o.out, { write: true, create: true });
  if (o.results !== undefined) checkFolder('--results', o.results);
  await buildReports({
    model: o.model, modelGiven: program.getOptionValueSource('model') === 'cli', results: o.results, fresh: o.fresh, workers: o.workers, epochs: o.epochs, limit: o.limit,
    data: o.data, out: path.resolve(o.out), log: (s) => process.stdout.write(`${s}\n`),
  });
  // md-to-pdf/puppeteer can leave handles open; the job is done.
  process.exit(0);
}, () => process.exit(process.exitCode ?? 1));
