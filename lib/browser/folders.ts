/**
 * A folder of our own for each headless browser launch (its profile and its TMPDIR), removed
 * when done, and by removeTemporaries on Ctrl-C with the browsers still using it killed first.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Temporary files (a PDF being written) and browser folders in use now: removed if the process is stopped (see removeTemporaries). */
const temporaries = new Set<string>();

/** A temporary file for removeTemporaries to remove if the process is stopped before it is renamed into place. */
export function keepTemporary(file: string): void {
  temporaries.add(file);
}

export function forgetTemporary(file: string): void {
  temporaries.delete(file);
}

/**
 * Removes the temporary files and folders of renders in progress (on Ctrl-C: no half-written PDF,
 * no browser profile is left). A browser still running writes into its profile while it is being
 * removed (rmdir then fails with ENOTEMPTY), so the browsers using one are killed first.
 * Never throws: it runs in a signal handler, where a stack would hide the message that matters.
 */
export function removeTemporaries(): void {
  for (const entry of temporaries) {
    killBrowsersUsing(path.join(entry, 'profile'));
    removeQuietly(entry);
  }
  temporaries.clear();
}

/** rm -rf that retries while a dying process lets go of its files, and says what it could not remove. */
function removeQuietly(entry: string): void {
  try {
    fs.rmSync(entry, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  } catch (e) {
    process.stderr.write(`warning: could not remove ${entry}: ${(e as Error).message}\n`);
  }
}

/**
 * SIGKILLs the processes started with --user-data-dir=<dir> (puppeteer passes the profile so).
 * Linux's /proc names them; elsewhere the retries of removeQuietly are all there is.
 */
function killBrowsersUsing(dir: string): void {
  if (process.platform !== 'linux') return;
  let pids: string[];
  try { pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)); } catch { return; }
  const flag = `--user-data-dir=${dir}`;
  for (const pid of pids) {
    try {
      if (fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(flag)) process.kill(Number(pid), 'SIGKILL');
    } catch { /* gone already, or not ours to read */ }
  }
}

/** Where one browser launch keeps its files: its profile, and its TMPDIR (Chromium's singleton socket lives there). */
export interface BrowserFolders { userDataDir: string; env: NodeJS.ProcessEnv }

/**
 * A folder of our own for one browser launch, removed when done or stopped: puppeteer's own
 * profile (puppeteer_dev_chrome_profile-*) and Chromium's org.chromium.Chromium.* in the temp
 * dir are removed only by a browser.close() that a Ctrl-C skips, so both live inside it.
 */
export async function withBrowserProfile<T>(use: (folders: BrowserFolders) => Promise<T>): Promise<T> {
  const folder = openBrowserFolder();
  try {
    return await use(folder);
  } finally {
    folder.remove();
  }
}

/** The folder of withBrowserProfile for a browser that outlives one call (a notebook's chart renderer); remove() when done. */
export function openBrowserFolder(): BrowserFolders & { dir: string; remove(): void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnist-lab-chromium-'));
  temporaries.add(dir);
  const userDataDir = path.join(dir, 'profile');
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  return {
    dir,
    userDataDir,
    env: { ...process.env, TMPDIR: tmp },
    remove() {
      removeBrowserFolder(dir);
      temporaries.delete(dir);
    },
  };
}

/** Removes a folder of openBrowserFolder (synchronously: also from an 'exit' handler), killing the browsers still using it. */
export function removeBrowserFolder(dir: string): void {
  // A browser that failed or timed out may still run: it must not keep writing into a folder being removed.
  killBrowsersUsing(path.join(dir, 'profile'));
  removeQuietly(dir);
}
