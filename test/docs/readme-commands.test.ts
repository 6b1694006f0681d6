/**
 * The README's shell commands stay true to the code: every `npm run` script exists, every
 * option given to one of the lab's commands is one that command accepts (its --help), every
 * script and file named is in the repository, and no command points outside it (a user's
 * clone has no ../shared). The quick commands are run here; each one that is not says why
 * (it trains for minutes, needs the network, Slurm or a browser window); the other tests
 * run small versions of them.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { projectRoot } from '../../lib/util/paths';
import { runCli } from '../helpers';

const root = projectRoot();
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const scripts = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts as Record<string, string>;

/** The commands of the README's ```sh blocks (a backslash at the end of a line continues it), without comments, split at `;` and `&&`. */
function commands(): string[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].replace(/\\\n\s*/g, ''));
  return blocks.flatMap((b) => b.split('\n')).map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean)
    .flatMap((l) => l.split(/\s*(?:&&|;)\s*/)).filter(Boolean);
}

/** `npm run NAME -- args` → the bin the script runs (dist/bin/NAME.js) and its args. */
function lab(command: string): { script: string; bin?: string; args: string[] } | undefined {
  const m = command.match(/^(?:\w+=\S+\s+)*npm run (?:--silent )?([\w-]+)(?: -- (.*))?$/);
  if (!m) return undefined;
  const bin = scripts[m[1]]?.match(/dist\/bin\/([\w-]+)\.js/)?.[1];
  return { script: m[1], bin, args: (m[2] ?? '').split(/\s+/).filter(Boolean) };
}

describe('README commands', () => {
  const all = commands();
  const help = new Map<string, string>();

  it('has shell commands to check', () => {
    assert.ok(all.length > 20, `${all.length} commands`);
  });

  it('every npm run script exists, and every option is one its command accepts', () => {
    for (const c of all) {
      const l = lab(c);
      if (!l) continue;
      assert.ok(l.script in scripts || ['ci', 'test'].includes(l.script), `${c}: no npm script '${l.script}'`);
      if (!l.bin || l.script === 'jupyter') continue; // jupyter passes its options on to Jupyter
      if (!help.has(l.bin)) {
        const r = runCli(l.bin, ['--help']);
        assert.equal(r.status, 0, `${l.bin} --help: ${r.stderr}`);
        help.set(l.bin, r.stdout);
      }
      for (const flag of l.args.filter((a) => a.startsWith('--'))) {
        const name = flag.replace(/=.*$/, '');
        // `profile` passes training options through to train.
        const accepted = help.get(l.bin)!.includes(name) || (l.bin === 'profile' && (help.get('train') ?? runCli('train', ['--help']).stdout).includes(name));
        assert.ok(accepted, `${c}: ${l.bin} does not accept ${name}`);
      }
    }
  });

  it('every file a command names is in the repository, and none points outside it', () => {
    for (const c of all) {
      assert.doesNotMatch(c, /(^|\s)\.\.\//, `${c}: points outside the repository`);
      for (const file of c.match(/(?:slurm|scripts|notebooks)\/[\w.-]+\.(?:sbatch|sh|py|ipynb)/g) ?? []) {
        assert.ok(fs.existsSync(path.join(root, file)), `${c}: ${file} does not exist`);
      }
    }
  });

  it('runs the quick commands and says why each other one is not run here', () => {
    const quick = /^npm run (?:train|runs|bench|profile|report|predict|notebooks|kernel) -- --help$|^npm run runs$|^npm run kernel$|^npm run train -- --epochs 1 --limit 640$/;
    const why = (c: string): string => {
      if (/sbatch|squeue|submit-sweep/.test(c)) return 'needs a Slurm cluster (test/slurm runs the scripts on a throw-away one)';
      if (/--download/.test(c)) return 'downloads from the internet (test/data/download.test.ts uses a local mirror)';
      if (/npm run jupyter/.test(c)) return 'starts a server for a browser (test/notebook starts it and asks its API)';
      if (/<\w+>|runs\/(A|B|2026)|my-digit|notebooks-mine\//.test(c)) return 'names a run or file of the reader\'s (placeholder)';
      if (/^npm ci$/.test(c)) return 'the install itself (CI runs it first)';
      if (/^npm test$/.test(c)) return 'the test suite itself';
      if (/npm run (--silent )?(report|train|profile|notebooks|bench)\b/.test(c)) return 'trains for minutes (the other tests run small versions of it)';
      return '';
    };
    const skipped: string[] = [];
    for (const c of all) {
      const l = lab(c);
      if (l?.bin && quick.test(c)) {
        const r = runCli(l.bin, l.args);
        assert.equal(r.status, 0, `${c}:\n${r.stderr}`);
        continue;
      }
      const reason = why(c);
      assert.ok(reason, `${c}: neither run here nor given a reason`);
      skipped.push(`${c}: ${reason}`);
    }
    process.stdout.write(`README commands not run here:\n${skipped.map((s) => `  ${s}`).join('\n')}\n`);
  });
});
