/** What the notebook tests share: the Python with Jupyter (or why they skip) and reading an executed notebook's outputs. */
import { findJupyterPython } from '../../lib/notebook/jupyter';

/** The Python with Jupyter, or '' and a visible SKIPPED line. */
export function jupyterPythonOrSkip(): { python: string; skip: string | false } {
  let python = '';
  try {
    python = findJupyterPython();
  } catch { /* reported below */ }
  const skip = python ? false : 'SKIPPED: no Python with Jupyter (apt-get install jupyter-notebook python3-nbconvert python3-nbclient)';
  if (skip) process.stdout.write(`# ${skip}\n`);
  return { python, skip };
}

export interface Output { output_type: string; name?: string; text?: string | string[]; data?: Record<string, string | string[]> }
/** A notebook output's text (a string or a list of lines). */
export const joinText = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : v ?? '');
