/**
 * Jupyter for the notebooks: finds a Python with Jupyter (Debian's is /usr/bin/python3;
 * the first python3 on PATH may be another one), installs tslab's kernelspec under the
 * project (.jupyter/, found through JUPYTER_PATH: no system-wide change) with plotly.js as
 * an nbextension beside it, and executes
 * notebooks headless with scripts/execute_notebook.py (nbclient).
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { UserError } from '../util/errors';
import { projectRoot } from '../util/paths';

/** The kernelspec's prefix: .jupyter/ in the project, or $MNIST_LAB_JUPYTER (the tests use a temporary one). */
function jupyterPrefix(): string {
  return path.resolve(process.env.MNIST_LAB_JUPYTER ?? path.join(projectRoot(), '.jupyter'));
}

/** Where installKernel puts plotly.js for the classic notebook (served under /nbextensions/ from JUPYTER_PATH). */
export const PLOTLY_NBEXTENSION = 'mnist-profiling-lab/plotly.min';

export function jupyterPath(): string {
  return path.join(jupyterPrefix(), 'share', 'jupyter');
}

/** A Python that can import nbclient and nbformat: $JUPYTER_PYTHON, /usr/bin/python3, python3. */
export function findJupyterPython(): string {
  const candidates = [process.env.JUPYTER_PYTHON, '/usr/bin/python3', 'python3'].filter((c): c is string => !!c);
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import nbclient, nbformat, notebook'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  throw new UserError('no Python with Jupyter found (tried ' + candidates.join(', ') + '). Install it: ' +
    'apt-get install jupyter-notebook python3-nbconvert python3-nbclient (Debian/Ubuntu), or pip install notebook nbclient, ' +
    'and set JUPYTER_PYTHON to that python if it is not the first one.');
}

/** Installs (or refreshes) the tslab kernelspec in .jupyter/; returns the JUPYTER_PATH to use. */
export function installKernel(python = findJupyterPython()): string {
  const root = projectRoot();
  // The notebooks import the package by its name through node_modules/mnist-profiling-lab, a link made at
  // postinstall that a later `npm install <package>` prunes: made again here, where every notebook command passes.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(path.join(root, 'scripts', 'link-self.js'));
  const tslabBin = path.join(path.dirname(require.resolve('tslab/package.json')), 'bin', 'tslab');
  const r = spawnSync(process.execPath, [tslabBin, 'install', `--python=${python}`, `--prefix=${jupyterPrefix()}`, `--binary=${tslabBin}`],
    { encoding: 'utf8' });
  if (r.status !== 0) throw new UserError(`tslab install failed: ${r.stderr || r.stdout}`);
  const spec = path.join(jupyterPath(), 'kernels', 'tslab', 'kernel.json');
  if (!fs.existsSync(spec)) throw new UserError(`tslab install did not write ${spec}`);
  // The TypeScript kernel starts the project's launcher (tslab with the line profiler in its cell
  // compiler), with this Node.
  const kernel = JSON.parse(fs.readFileSync(spec, 'utf8')) as { argv: string[]; display_name: string };
  kernel.argv = [process.execPath, path.join(root, 'dist', 'lib', 'notebook', 'kernel.js'), ...kernel.argv.slice(1)];
  fs.writeFileSync(spec, JSON.stringify(kernel));
  // plotly.js for the classic notebook's interactive charts, once, instead of inlined into every notebook (display.ts).
  const plotly = path.join(jupyterPath(), 'nbextensions', `${PLOTLY_NBEXTENSION}.js`);
  fs.mkdirSync(path.dirname(plotly), { recursive: true });
  fs.copyFileSync(require.resolve('plotly.js-dist-min'), plotly);
  return jupyterPath();
}

export interface NotebookRun { source: string; dest: string; seconds: number; ok: boolean; error?: string }

/** Executes one notebook headless; the executed copy (outputs included) goes to `dest`. */
export function executeNotebook(source: string, dest: string, python: string, env: NodeJS.ProcessEnv = {}, timeoutS = 1800): NotebookRun {
  const started = performance.now();
  const r = spawnSync(python, [path.join(projectRoot(), 'scripts', 'execute_notebook.py'), source, dest, '--timeout', String(timeoutS)], {
    encoding: 'utf8', env: { ...process.env, ...env, JUPYTER_PATH: jupyterPath() }, timeout: (timeoutS + 60) * 1000,
  });
  const seconds = (performance.now() - started) / 1000;
  const ok = r.status === 0;
  return { source, dest, seconds, ok, error: ok ? undefined : (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}
