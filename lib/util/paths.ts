import fs from 'node:fs';
import path from 'node:path';

/**
 * The project's root folder (the one holding package.json), found from this file's
 * location so that `lib` works from `dist/`, from tests and from notebooks alike.
 */
export function projectRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'mnist-profiling-lab') return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find the project's package.json above ${__dirname}`);
    dir = parent;
  }
}

/** Where results go by default (the report's sweeps, executed notebooks, `npm run runs`): `runs/` in the project, or $MNIST_LAB_RUNS. */
export function runsRoot(): string {
  return path.resolve(process.env.MNIST_LAB_RUNS ?? path.join(projectRoot(), 'runs'));
}

/** A folder name for now: 2026-11-25-20-40-00. */
export function timestampName(date = new Date()): string {
  return date.toISOString().replace(/[:T]/g, '-').replace(/\..*/, '');
}

/** Where data sets live: `data/` in the project, or $MNIST_LAB_DATA. */
export function dataRoot(): string {
  return process.env.MNIST_LAB_DATA ?? path.join(projectRoot(), 'data');
}
