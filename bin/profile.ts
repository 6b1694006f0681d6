#!/usr/bin/env node
/**
 * `npm run profile -- --workers 1,8 --epochs 5 --out DIR [training options]`: the
 * worker study. Trains once per worker count (fresh processes, line profiler on) and
 * writes DIR/line-profile-wN.txt, DIR/epochs.csv, DIR/lines.csv, DIR/lines-by-workers.csv.
 */
import path from 'node:path';
import { command, workerCounts } from '../lib/util/cli-options';
import { runMain } from '../lib/util/errors';
import { gatherSweep, runSweep } from '../lib/runs/sweep';
import { checkFolder } from '../lib/util/path-checks';

runMain(async () => {
  const program = command('profile')
    .description('Train once per worker count with the line profiler on, and gather the results in danfo tables.')
    .option('--workers <list>', 'worker counts to compare, comma-separated', (v: string) => workerCounts(v), [1, 8])
    .option('--out <dir>', 'folder for the results', path.join('runs', 'profile'))
    .option('--fresh', 'remove the runs in --out and start every run over (default: keep complete runs, resume interrupted ones; a folder holds one study)', false)
    .option('--gather', 'only gather existing runs in --out into the tables (e.g. after a Slurm job array)', false)
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText('after', `
Any other option is passed to every training run (see npm run train -- --help), e.g.
  npm run profile -- --workers 1,8 --epochs 5 --out runs/study
  npm run profile -- --workers 1,8 --epochs 1 --limit 640 --data ../shared/data/mnist

Writes to --out: line-profile-w<N>.txt (line_profiler's text per worker count: the
training loop, the loader workers' batch building, the per-thread summary), epochs.csv
(per epoch and worker count, with the machine), lines.csv (per line, epoch, thread and
worker count), lines-by-workers.csv (each training-loop line's total time side by side),
threads.csv (per thread: busy share, batches built, build time, queue), trace-w<N>.json
(every thread's timeline: open in https://ui.perfetto.dev), machine.json, train-w<N>.log
and runs/w<N>/ (each run's folder).`)
    .parse();
  const o = program.opts();
  const out = o.gather ? checkFolder('--out', o.out, { write: true }) : checkFolder('--out', o.out, { write: true, create: true });
  const log = (s: string) => process.stdout.write(`${s}\n`);
  const tables = o.gather ? gatherSweep(out, o.workers) : await runSweep({ workers: o.workers, out, trainArgs: program.args, log, fresh: o.fresh });

  log('\nTotal time per line (all epochs), seconds, by worker count:');
  const cols = o.workers.map((w: number) => `time_w${w}`);
  log(`${'Line'.padStart(5)} ${cols.map((c: string) => c.padStart(10)).join(' ')}  Contents`);
  for (const r of tables.byLine) {
    log(`${String(r.line).padStart(5)} ${cols.map((c: string) => (typeof r[c] === 'number' ? (r[c] as number).toFixed(3) : '-').padStart(10)).join(' ')}  ${r.contents}`);
  }
  const each = (name: string) => `${name}-w{${o.workers.join(',')}}`;
  log(`\nResults in ${out}: ${each('line-profile')}.txt, epochs.csv, lines.csv, lines-by-workers.csv, threads.csv, ` +
    `${each('trace')}.json (timelines: open in https://ui.perfetto.dev)`);
});
