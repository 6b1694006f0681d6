/**
 * Finds a Chromium for rendering, in this order: $PUPPETEER_EXECUTABLE_PATH, puppeteer's
 * own download (absent where it could not be fetched), the system's chromium/chrome.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../lib/util/errors';

const SYSTEM = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    if (dir && fs.existsSync(file)) return file;
  }
  return undefined;
}

export function findChromium(): { path: string; source: string } {
  const env = process.env.PUPPETEER_EXECUTABLE_PATH;
  if (env) {
    if (!fs.existsSync(env)) throw new UserError(`PUPPETEER_EXECUTABLE_PATH=${env}: no such file`);
    return { path: env, source: 'PUPPETEER_EXECUTABLE_PATH' };
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const own = (require('puppeteer') as { executablePath(): string }).executablePath();
    if (own && fs.existsSync(own)) return { path: own, source: "puppeteer's download" };
  } catch { /* not downloaded: fall through */ }
  for (const name of SYSTEM) {
    const found = onPath(name);
    if (found) return { path: found, source: 'system' };
  }
  throw new UserError('no Chromium found to render the PDFs. Install one (Debian/Ubuntu: apt-get install chromium; ' +
    'on a cluster, a chromium or chrome module), or point PUPPETEER_EXECUTABLE_PATH at a Chrome/Chromium binary.');
}

/** Flags for a headless Chromium on a closed network, as root in CI. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
