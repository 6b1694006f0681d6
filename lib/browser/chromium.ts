/**
 * Finds a Chromium for rendering, in this order: $PUPPETEER_EXECUTABLE_PATH, puppeteer's
 * own download (absent where it could not be fetched), the system's chromium/chrome, and
 * last the browser packaged in the npm dependency @sparticuz/chromium (unpacked once into
 * ~/.cache/mnist-profiling-lab/): so `npm ci && npm run report` renders on a machine with
 * Node alone, without root or internet beyond the npm registry.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../util/errors';
import { installedVersions } from '../util/packages';

const SYSTEM = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];
const PACKAGED = '@sparticuz/chromium';

/** Flags for a headless Chromium on a closed network, as root in CI. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Browser {
  path: string;
  /** Where it came from: PUPPETEER_EXECUTABLE_PATH, puppeteer's download, system, or the npm package. */
  source: string;
  /** Command-line flags to launch it with. */
  args: string[];
  /** puppeteer's `headless` launch option. */
  headless: true | 'shell';
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    if (dir && fs.existsSync(file)) return file;
  }
  return undefined;
}

/**
 * The packaged browser, unpacked on first use. It unpacks into os.tmpdir(), which a shared
 * login node shares between users; so it is pointed at a per-user cache folder instead.
 */
async function packagedChromium(): Promise<Browser | undefined> {
  const version = installedVersions([PACKAGED])[PACKAGED];
  if (!version) return undefined;
  const cache = path.join(os.homedir(), '.cache', 'mnist-profiling-lab', `chromium-${version}`);
  fs.mkdirSync(cache, { recursive: true });
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = cache;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require(PACKAGED) as { default?: PackagedModule } & PackagedModule;
    const chromium = mod.default ?? mod;
    const exe = await chromium.executablePath();
    return { path: exe, source: `npm package ${PACKAGED} ${version}, unpacked in ${cache}`, args: [...chromium.args, ...CHROMIUM_ARGS], headless: 'shell' };
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}
interface PackagedModule { executablePath(): Promise<string>; args: string[] }

export async function findChromium(): Promise<Browser> {
  const env = process.env.PUPPETEER_EXECUTABLE_PATH;
  const browser = (p: string, source: string): Browser => ({ path: p, source, args: CHROMIUM_ARGS, headless: true });
  if (env) {
    if (!fs.existsSync(env)) throw new UserError(`PUPPETEER_EXECUTABLE_PATH=${env}: no such file`);
    return browser(env, 'PUPPETEER_EXECUTABLE_PATH');
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const own = (require('puppeteer') as { executablePath(): string }).executablePath();
    if (own && fs.existsSync(own)) return browser(own, "puppeteer's download");
  } catch { /* not downloaded: fall through */ }
  for (const name of SYSTEM) {
    const found = onPath(name);
    if (found) return browser(found, 'system');
  }
  let packagedFailure = '';
  try {
    const packaged = await packagedChromium();
    if (packaged) return packaged;
  } catch (err) {
    packagedFailure = ` The packaged browser (${PACKAGED}) did not start: ${(err as Error).message.split('\n')[0]}.`;
  }
  throw new UserError(`no Chromium found to render the PDFs.${packagedFailure} Install one (Debian/Ubuntu: apt-get install chromium; ` +
    'on a cluster, a chromium or chrome module), point PUPPETEER_EXECUTABLE_PATH at a Chrome/Chromium binary, or, without root ' +
    '(needs internet once): npx puppeteer browsers install chrome-headless-shell');
}
