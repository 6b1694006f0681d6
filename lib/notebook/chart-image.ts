/**
 * A chart's static image for a notebook, made synchronously: a cell's output must be sent
 * while the cell runs (output sent after it ends lands nowhere), so the kernel blocks on a
 * worker thread that keeps one headless Chromium for all charts (the first takes ~5 s,
 * later ones a fraction of a second). Without a Chromium the chart has no static image and
 * says why, once per kernel.
 */
import path from 'node:path';
import { createSyncFn } from 'synckit';
import { removeBrowserFolder } from '../browser/folders';
import type { Figure } from '../util/html';
import type { ChartImageReply } from './chart-image-worker';

const TIMEOUT_MS = 120_000;
let render: ((figureJson: string) => ChartImageReply) | undefined;
let unavailable: string | undefined;
const folders = new Set<string>();

/** The figure as an SVG drawn by Plotly, or why there is none. */
export function chartSvg(figure: Figure): { svg?: string; error?: string } {
  if (unavailable) return { error: unavailable };
  if (!render) {
    render = createSyncFn(path.join(__dirname, 'chart-image-worker.js'), { timeout: TIMEOUT_MS });
    // The worker dies with the kernel without closing its browser (pipe: the browser quits too); its folder is ours to remove.
    process.once('exit', () => { for (const dir of folders) removeBrowserFolder(dir); });
  }
  let reply: ChartImageReply;
  try {
    reply = render(JSON.stringify(figure));
  } catch (err) {
    reply = { error: (err as Error).message.split('\n')[0] };
  }
  if (reply.browserFolder) folders.add(reply.browserFolder);
  if (reply.error) unavailable = reply.error;
  return reply;
}
