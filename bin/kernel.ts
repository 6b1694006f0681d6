#!/usr/bin/env node
/** `npm run kernel`: installs the tslab (TypeScript) kernelspec under .jupyter/ and says how to open the notebooks. */
import { command } from '../lib/util/cli-options';
import { runMain } from '../lib/util/errors';
import { findJupyterPython, installKernel } from '../lib/notebook/jupyter';
import { jupyterCommand } from './jupyter';

runMain(async () => {
  command('kernel').description('Install the tslab kernelspec where Jupyter finds it (project-local, via JUPYTER_PATH).').parse();
  const python = findJupyterPython();
  const jp = installKernel(python);
  const c = jupyterCommand(python, jp);
  process.stdout.write(`tslab kernel installed in ${jp}/kernels (for ${python}).\n\n` +
    'Open the notebooks with\n  npm run jupyter\nwhich runs\n' +
    `  JUPYTER_PATH=${c.env.JUPYTER_PATH} ${c.command} ${c.args.join(' ')}\n` +
    'and pick the "TypeScript" kernel. JupyterLab from your own Python works with the same JUPYTER_PATH.\n');
});
