/**
 * Downloads the official MNIST files, verifying each one's md5 before it is kept.
 * Each file is streamed to a temporary name and renamed only when its checksum matches,
 * so an interrupted or corrupted download never leaves a file that looks complete.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { UserError } from '../util/errors';
import { MNIST_FILES } from './mnist-files';

/** The usual public mirrors, tried in order (the same as torchvision's). */
export const DEFAULT_MIRRORS = [
  'https://ossci-datasets.s3.amazonaws.com/mnist/',
  'http://yann.lecun.com/exdb/mnist/',
];

/** md5 of the official gzip files. */
export const MNIST_MD5: Record<string, string> = {
  [`${MNIST_FILES.trainImages}.gz`]: 'f68b3c2dcbeaaa9fbdd348bbdeb94873',
  [`${MNIST_FILES.trainLabels}.gz`]: 'd53e105ee54ea40749a09fcbcd1e9432',
  [`${MNIST_FILES.testImages}.gz`]: '9fb629c4189551a2d022fa330f9573f3',
  [`${MNIST_FILES.testLabels}.gz`]: 'ec29112dd5afa0611ce80d1b7f02629c',
};

export interface DownloadOptions {
  dir: string;
  /** Base URLs ending in '/'; default: $MNIST_MIRRORS (comma-separated) or DEFAULT_MIRRORS. */
  mirrors?: string[];
  /** Per-request time limit. */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Expected checksums (tests pass their own). */
  md5?: Record<string, string>;
}

export function md5OfFile(file: string): string {
  return crypto.createHash('md5').update(fs.readFileSync(file)).digest('hex');
}

export function mirrorsFromEnv(): string[] {
  const env = process.env.MNIST_MIRRORS;
  return env ? env.split(',').map((m) => m.trim()).filter(Boolean) : DEFAULT_MIRRORS;
}

/**
 * An abort signal for one request: fired by `stop`, or when nothing arrived for `timeoutMs`
 * (`touch()` restarts the wait at each chunk). A timer of our own, cleared by `done()`:
 * AbortSignal.timeout joined with AbortSignal.any stops firing after a garbage collection
 * (Node issue 57736), which left a silent mirror hanging the download for good.
 */
function requestSignal(timeoutMs: number, stop: AbortSignal) {
  const controller = new AbortController();
  const onStop = () => controller.abort(stop.reason);
  stop.addEventListener('abort', onStop, { once: true });
  let timer: NodeJS.Timeout | undefined;
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`timed out: nothing received for ${timeoutMs / 1000} s`)), timeoutMs);
  };
  touch();
  const done = () => {
    clearTimeout(timer);
    stop.removeEventListener('abort', onStop);
  };
  return { signal: controller.signal, touch, done };
}

async function fetchTo(url: string, dest: string, expectedMd5: string, timeoutMs: number, stop: AbortSignal): Promise<void> {
  const tmp = `${dest}.part-${process.pid}`;
  const request = requestSignal(timeoutMs, stop);
  try {
    const res = await fetch(url, { signal: request.signal });
    if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    const hash = crypto.createHash('md5');
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
    body.on('data', (chunk: Buffer) => {
      request.touch();
      hash.update(chunk);
    });
    // Opened here, not by the stream: a stream opens its file asynchronously, so a body failing at
    // once (a truncated mirror) could create the file after the catch below removed it.
    await pipeline(body, fs.createWriteStream(tmp, { fd: fs.openSync(tmp, 'w') }));
    const got = hash.digest('hex');
    if (got !== expectedMd5) throw new Error(`md5 ${got}, expected ${expectedMd5} (corrupted or wrong file)`);
    fs.renameSync(tmp, dest);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    // An abort rejects with a generic AbortError; the reason (a timeout, a stop) says what happened.
    const e = (request.signal.aborted && request.signal.reason instanceof Error ? request.signal.reason : err) as Error & { cause?: Error };
    throw new Error(e.cause?.message ? `${e.message}: ${e.cause.message}` : e.message);
  } finally {
    request.done();
  }
}

/** Fetches the four files into `dir` (skipping ones already there with the right md5). */
export async function downloadMnist(options: DownloadOptions): Promise<string> {
  const { dir, timeoutMs = 60_000, log = () => {} } = options;
  const mirrors = options.mirrors ?? mirrorsFromEnv();
  const sums = options.md5 ?? MNIST_MD5;
  fs.mkdirSync(dir, { recursive: true });
  // Ctrl-C (or Slurm's signals) stop a download at once, partial file removed; training's own
  // stop handlers would otherwise keep the process waiting for the request to end.
  const stop = new AbortController();
  let stoppedBy = '';
  const onSignal = (signal: NodeJS.Signals) => {
    stoppedBy ||= signal;
    stop.abort();
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGUSR1'];
  for (const sig of signals) process.on(sig, onSignal);
  try {
    await downloadAll(dir, mirrors, sums, timeoutMs, log, stop.signal, () => stoppedBy);
  } finally {
    for (const sig of signals) process.off(sig, onSignal);
  }
  return dir;
}

async function downloadAll(dir: string, mirrors: string[], sums: Record<string, string>, timeoutMs: number, log: (line: string) => void,
  stop: AbortSignal, stoppedBy: () => string): Promise<void> {
  for (const [name, md5] of Object.entries(sums)) {
    const dest = path.join(dir, name);
    if (fs.existsSync(dest) && md5OfFile(dest) === md5) {
      log(`${name}: already present, md5 ok`);
      continue;
    }
    const failures: string[] = [];
    let done = false;
    for (const mirror of mirrors) {
      const url = new URL(name, mirror).toString();
      log(`Downloading ${url}`);
      try {
        await fetchTo(url, dest, md5, timeoutMs, stop);
        log(`${name}: md5 ok`);
        done = true;
        break;
      } catch (err) {
        if (stop.aborted) {
          throw new UserError(`stopped by ${stoppedBy()} while downloading ${name}: the partial file was removed; ` +
            `the files already complete in ${dir} are kept (run again to fetch the rest)`, 130);
        }
        failures.push(`${url}: ${(err as Error).message}`);
        log(`  failed: ${(err as Error).message}`);
      }
    }
    if (!done) {
      throw new UserError(`could not download ${name} from any mirror:\n  ${failures.join('\n  ')}\n` +
        'Without network access, use the embedded default (--data embedded) or a folder holding the ' +
        'MNIST files (--data DIR). Other mirrors can be given in MNIST_MIRRORS (comma-separated base URLs).');
    }
  }
}
