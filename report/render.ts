/**
 * Markdown → PDF with md-to-pdf in headless Chromium: A4, page numbers, the title in the
 * PDF's metadata, fonts embedded by Chromium. A failed launch can leave md-to-pdf's local
 * server open forever, so rendering has a hard time limit; the CLI exits on failure.
 */
import fs from 'node:fs';
import path from 'node:path';
import { mdToPdf } from 'md-to-pdf';
import type { Browser } from '../lib/browser/chromium';
import { forgetTemporary, keepTemporary, withBrowserProfile } from '../lib/browser/folders';

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

export async function renderPdf(markdown: string, dest: string, title: string, chromium: Browser, timeoutMs = 120_000): Promise<void> {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.tmp-${process.pid}.pdf`;
  keepTemporary(tmp);
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
      forgetTemporary(tmp);
    }
  });
}
