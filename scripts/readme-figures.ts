// `npm run readme-figures`: measures what the README quotes, in one run on this machine, and
// rewrites the README's generated blocks (between <!-- NAME:begin --> and <!-- NAME:end -->)
// so that figures and sample output are regenerated, never edited by hand:
//   1. `npm run report --fresh` from nothing (the 1-vs-8-worker study, 5 epochs, embedded data),
//      timed; its 1-worker run is exactly `npm run train -- --profile`, so its log is the
//      sample output and its metrics the per-epoch accuracy;
//   2. the same command again, re-rendering from the kept sweep, timed.
// Everything runs in a temporary folder; the machine and the date are written with the figures.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { machineInfo } from '../lib/util/machine';

const root = path.resolve(__dirname, '..');
const readme = path.join(root, 'README.md');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'readme-figures-'));
const env = { ...process.env, MNIST_LAB_RUNS: path.join(work, 'runs') };

function timed(args: string[]): { seconds: number; stdout: string } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'bin', 'report.js'), ...args], { env, encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`report ${args.join(' ')} failed:\n${r.stderr}`);
  return { seconds: (performance.now() - t0) / 1000, stdout: r.stdout };
}

const BLOCKS = ['sample-output', 'profile-excerpt', 'measured'];
const block = (name: string) => new RegExp(`(<!-- ${name}:begin -->)[\\s\\S]*?(<!-- ${name}:end -->)`);
// Checked before measuring: a README without its blocks would waste the run.
for (const name of BLOCKS) {
  if (!block(name).test(fs.readFileSync(readme, 'utf8'))) throw new Error(`README.md has no <!-- ${name}:begin --> ... <!-- ${name}:end --> block`);
}

const minutes = (s: number) => `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
const out = path.join(work, 'pdf');
process.stdout.write('Measuring npm run report from nothing (a few minutes)...\n');
const fresh = timed(['--fresh', '--out', out]);
const again = timed(['--out', out]);
const sweep = fresh.stdout.match(/sweep \(.*\) into (\S+)/)?.[1];
if (!sweep) throw new Error(`no sweep folder in the report's log:\n${fresh.stdout}`);

interface Metrics { epoch: number; test_accuracy: number; test_correct: number; test_total: number; train_seconds: number; test_seconds: number; compute_threads: number }
const metrics = (w: number): Metrics[] => fs.readFileSync(path.join(sweep, 'runs', `w${w}`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
const range = (xs: number[], digits = 1) => `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
const accuracy = (ms: Metrics[]) => ms.map((m, i) => (i === ms.length - 1 ? `**${m.test_accuracy.toFixed(2)}%**` : m.test_accuracy.toFixed(2))).join(' → ');
const [w1, w8] = [metrics(1), metrics(8)];
const m = machineInfo();
const date = new Date().toISOString().slice(0, 10);
const where = `${date}, ${m.hostname}: ${m.cpu_model}, ${m.cpus} CPUs, ${m.memory_gb} GB, Node ${m.node}, TensorFlow.js ${m.tfjs}, wasm backend, ` +
  `${w1[0].compute_threads} compute threads`;

// The sample output: the 1-worker run's log up to its first test line, the summary shortened.
const log = fs.readFileSync(path.join(sweep, 'train-w1.log'), 'utf8').split('\n');
const firstTest = log.findIndex((l) => l.startsWith('Test set:'));
const keep = log.slice(0, firstTest + 1).filter((l, i, all) => {
  const inSummary = all.slice(0, i).some((x) => x.startsWith('====')) && !all.slice(0, i).some((x) => x.startsWith('Total params'));
  return !inSummary || /Conv2d-1 |Total params/.test(l) || l.startsWith('====');
});
const trainLines = keep.filter((l) => l.startsWith('Train Epoch: 1 '));
const sample = keep.filter((l) => !l.startsWith('Train Epoch: 1 ') || l === trainLines[0] || l === trainLines[trainLines.length - 1]);

// The line profile of the 1-worker run: each function's header and its lines that took 0.1% or more.
const profile = fs.readFileSync(path.join(sweep, 'line-profile-w1.txt'), 'utf8').split('\n').filter((l) => {
  const row = l.match(/^\s*\d+\s+\d+\s+[\d.]+\s+[\d.]+\s+([\d.]+)\s/);
  return row ? Number(row[1]) >= 0.1 : !/^\s*\d+\s/.test(l);
});

const blocks: Record<string, string> = {
  'profile-excerpt': ['```', ...profile.join('\n').trim().split('\n'), '```', '',
    `(5 epochs of the embedded data with 1 worker, from \`npm run report\`, measured ${where}; lines under 0.1% left out.)`].join('\n'),
  'sample-output': ['```', ...sample, '```', '', `(The first epoch of \`npm run train -- --profile\` on the embedded data, measured ${where}.)`].join('\n'),
  measured: [
    `Measured by \`npm run readme-figures\` on ${where}:`,
    '',
    '| | |',
    '|---|---|',
    `| \`npm run report\` from nothing (5 epochs × 1 and 8 workers, line profiler on, then both PDFs) | ${minutes(fresh.seconds)}; re-rendering from the kept sweep ${again.seconds.toFixed(1)} s |`,
    `| test accuracy per epoch, 1 worker (2,000 held-out digits of the embedded data) | ${accuracy(w1)} |`,
    `| test accuracy per epoch, 8 workers | ${accuracy(w8)} |`,
    `| training time per epoch (8,000 samples), 1 / 8 workers | ${range(w1.map((x) => x.train_seconds))} s / ${range(w8.map((x) => x.train_seconds))} s, plus ${range([...w1, ...w8].map((x) => x.test_seconds))} s of testing |`,
  ].join('\n'),
};

let text = fs.readFileSync(readme, 'utf8');
for (const [name, body] of Object.entries(blocks)) text = text.replace(block(name), (_, a: string, b: string) => `${a}\n${body}\n${b}`);
fs.writeFileSync(readme, text);
process.stdout.write(`README.md updated (${Object.keys(blocks).join(', ')}); the measured run is in ${work}\n`);
