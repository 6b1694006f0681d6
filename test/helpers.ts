import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { encodeIdx } from '../lib/data/idx';
import { MNIST_FILES } from '../lib/data/mnist-files';
import { projectRoot } from '../lib/util/paths';

/** Folders tmpDir made in this process: removed when it exits (KEEP_TEST_TMP=1 keeps them to look at). */
const made: string[] = [];
process.on('exit', () => {
  if (process.env.KEEP_TEST_TMP) return;
  for (const dir of made) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // a child still writing into it: leave it to the system's temp cleaning
    }
  }
});

/** A fresh folder under the system's temp folder, removed when the test process exits. */
export function tmpDir(prefix = 'mnist-lab-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
}

// Tests write only under temporary folders: default results (runs/) and the Jupyter kernelspec
// go there too, for this process and every process it starts.
process.env.MNIST_LAB_RUNS ??= tmpDir('lab-runs-');
process.env.MNIST_LAB_JUPYTER ??= tmpDir('lab-jupyter-');

/** Writes a small valid data folder: `train`/`test` samples of 28x28 with labels i % 10. */
export function writeDataFolder(dir: string, train = 40, test = 20, gzip = false): string {
  fs.mkdirSync(dir, { recursive: true });
  const write = (name: string, bytes: Buffer) =>
    fs.writeFileSync(path.join(dir, gzip ? `${name}.gz` : name), gzip ? zlib.gzipSync(bytes) : bytes);
  const split = (n: number, imagesName: string, labelsName: string) => {
    const images = new Uint8Array(n * 784).map((_, i) => (i * 7) % 256);
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    write(imagesName, encodeIdx([n, 28, 28], images));
    write(labelsName, encodeIdx([n], labels));
  };
  split(train, MNIST_FILES.trainImages, MNIST_FILES.trainLabels);
  split(test, MNIST_FILES.testImages, MNIST_FILES.testLabels);
  return dir;
}

export interface CliResult { status: number | null; stdout: string; stderr: string }

/** Runs one of the compiled CLIs (dist/bin/NAME.js) to completion. */
/** A cache folder with no thread sweep in it: the commands tested choose their threads by rule, whatever this machine recorded. */
const EMPTY_CACHE = path.join(os.tmpdir(), `mnist-lab-test-cache-${process.pid}`);

export function runCli(name: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 600_000): CliResult {
  const r = spawnSync(process.execPath, [path.join(projectRoot(), 'dist', 'bin', `${name}.js`), ...args], {
    encoding: 'utf8', env: { ...process.env, MNIST_LAB_CACHE: EMPTY_CACHE, ...env }, timeout: timeoutMs,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Element-wise closeness of two float arrays: the largest difference may be at most
 * `relative` times the larger of 1 and b's largest magnitude, plus `absolute`.
 */
export function assertClose(a: Float32Array, b: Float32Array, label: string, relative = 1e-4, absolute = 0): void {
  assert.equal(a.length, b.length, `${label}: lengths`);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  assert.ok(diff <= relative * Math.max(1, scale) + absolute, `${label}: max difference ${diff} (scale ${scale})`);
}
