#!/usr/bin/env node
/** `npm run kernel`: installs the tslab (TypeScript) kernelspec under .jupyter/ and says how to open the notebooks. */
import { Command } from 'commander';
import { runMain } from '../lib/util/errors';
import { findJupyterPython, installKernel } from '../lib/notebook/jupyter';

runMain(async () => {
  new Command('kernel').description('Install the tslab kernelspec where Jupyter finds it (project-local, via JUPYTER_PATH).').parse();
  const python = findJupyterPython();
  const jp = installKernel(python);
  process.stdout.write(`tslab kernel installed in ${jp}/kernels (for ${python}).\n\n` +
    `Open the notebooks from the repository root:\n` +
    `  JUPYTER_PATH=${jp} ${python} -m notebook --notebook-dir=. notebooks/        # classic notebook (Debian)\n` +
    `  JUPYTER_PATH=${jp} jupyter lab notebooks/                                      # JupyterLab, from your own Python\n` +
    `(as root, add --allow-root). Pick the "TypeScript" kernel.\n`);
});
