/**
 * The README's shell commands stay true to the code: every `npm run` script exists, every
 * option given to one of the lab's commands is one that command accepts (its --help), every
 * script and file named is in the repository, and no command points outside it (a user's
 * clone has no ../shared). Commands are checked, not all run: most train for minutes; the
 * quick ones are run by the other tests.
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

/** The lines of the README's ```sh blocks, without comments, split at `;` and `&&`. */
function commands(): string[] {
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]);
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
});
