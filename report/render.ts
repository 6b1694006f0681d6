/**
 * Markdown → PDF with md-to-pdf in headless Chromium: A4, page numbers, the title in the
 * PDF's metadata, fonts embedded by Chromium. A failed launch can leave md-to-pdf's local
 * server open forever, so rendering has a hard time limit; the CLI exits on failure.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mdToPdf } from 'md-to-pdf';
import type { Browser } from './chromium';

const CSS = `
body { font-family: 'DejaVu Sans', sans-serif; font-size: 10pt; line-height: 1.4; color: #111; }
h1 { font-size: 18pt; margin-bottom: 4pt; } h2 { font-size: 13pt; margin-top: 16pt; border-bottom: 1px solid #ccc; page-break-after: avoid; }
h3 { page-break-after: avoid; } tr { page-break-inside: avoid; } li { page-break-inside: avoid; }
table { border-collapse: collapse; font-size: 8pt; margin: 6pt 0; } th, td { border: 1px solid #bbb; padding: 2pt 4pt; }
th { background: #f0f0f0; } td.num, th.num { text-align: right; }
pre, code { font-family: 'DejaVu Sans Mono', monospace; } code { font-size: 8pt; }
pre { font-size: 5.6pt; line-height: 1.25; white-space: pre-wrap; word-break: break-all; background: #fafafa; padding: 4pt; border: 1px solid #ddd; }
pre code { font-size: inherit; }
svg { max-width: 100%; height: auto; } .figure { page-break-inside: avoid; margin: 8pt 0; }
.small { font-size: 8.5pt; color: #444; }
`;

/** Temporary PDFs and browser profiles in use now: removed if the process is stopped (see removeTemporaries). */
const temporaries = new Set<string>();

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
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mnist-lab-chromium-'));
  temporaries.add(dir);
  const userDataDir = path.join(dir, 'profile');
  const tmp = path.join(dir, 'tmp');
  fs.mkdirSync(tmp);
  try {
    return await use({ userDataDir, env: { ...process.env, TMPDIR: tmp } });
  } finally {
    // A browser that failed or timed out may still run: it must not keep writing into a folder being removed.
    killBrowsersUsing(userDataDir);
    removeQuietly(dir);
    temporaries.delete(dir);
  }
}

export async function renderPdf(markdown: string, dest: string, title: string, chromium: Browser, timeoutMs = 120_000): Promise<void> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}.pdf`;
  temporaries.add(tmp);
  await withBrowserProfile(async ({ userDataDir, env }) => {
    const render = mdToPdf({ content: markdown }, {
      dest: tmp,
      document_title: title,
      css: CSS,
      launch_options: { executablePath: chromium.path, args: chromium.args, headless: chromium.headless, timeout: timeoutMs, userDataDir, env },
      pdf_options: {
        format: 'A4', printBackground: true, displayHeaderFooter: true,
        margin: { top: '16mm', bottom: '18mm', left: '14mm', right: '14mm' },
        headerTemplate: '<span></span>',
        footerTemplate: `<div style="font-size:8px;width:100%;text-align:center;color:#666;">${title} — page <span class="pageNumber"></span> of <span class="totalPages"></span></div>`,
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`rendering ${path.basename(dest)} took longer than ${timeoutMs / 1000} s (Chromium at ${chromium.path})`)), timeoutMs);
    });
    try {
      await Promise.race([render, timeout]);
      fs.renameSync(tmp, dest);
    } finally {
      clearTimeout(timer);
      fs.rmSync(tmp, { force: true });
      temporaries.delete(tmp);
    }
  });
}
