#!/usr/bin/env node
/**
 * `npm run jupyter [-- jupyter options]`: installs the tslab kernelspec (project-local) and
 * starts the classic notebook server on notebooks/, the same command for a user and for
 * root (root gets --allow-root, which the server requires).
 */
import path from 'node:path';
import { spawn } from 'node:child_process';
import { command } from '../lib/util/cli-options';
import { runMain } from '../lib/util/errors';
import { findJupyterPython, installKernel } from '../lib/notebook/jupyter';
import { projectRoot } from '../lib/util/paths';

/** The command that starts Jupyter on the notebooks, as `npm run kernel` prints it and `npm run jupyter` runs it. */
export function jupyterCommand(python: string, jupyterPath: string, extra: string[] = []): { command: string; args: string[]; env: Record<string, string> } {
  const args = ['-m', 'notebook', `--notebook-dir=${path.join(projectRoot(), 'notebooks')}`, ...(process.getuid?.() === 0 ? ['--allow-root'] : []), ...extra];
  return { command: python, args, env: { JUPYTER_PATH: jupyterPath } };
}

if (require.main === module) {
  runMain(async () => {
    const program = command('jupyter')
      .description('Start the classic Jupyter notebook server on notebooks/ with the TypeScript (tslab) kernel.')
      .allowUnknownOption()
      .allowExcessArguments()
      .addHelpText('after', '\nOther options go to Jupyter, e.g.  npm run jupyter -- --no-browser --port 8890')
      .parse();
    const python = findJupyterPython();
    const c = jupyterCommand(python, installKernel(python), program.args);
    process.stdout.write(`JUPYTER_PATH=${c.env.JUPYTER_PATH} ${c.command} ${c.args.join(' ')}\n`);
    const child = spawn(c.command, c.args, { stdio: 'inherit', env: { ...process.env, ...c.env } });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
    process.exitCode = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? 1)));
  });
}
