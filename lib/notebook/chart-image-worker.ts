/**
 * The worker behind notebook/chart-image.ts: keeps one headless Chromium with plotly.js
 * loaded for the kernel's charts, and closes it after a minute without one.
 */
import { runAsWorker } from 'synckit';
import { findChromium } from '../browser/chromium';
import { PlotlySvgRenderer } from '../browser/plotly-svg';
import type { Figure } from '../util/html';

const IDLE_MS = 60_000;
let renderer: Promise<PlotlySvgRenderer> | undefined;
let idle: NodeJS.Timeout | undefined;

export interface ChartImageReply { svg?: string; error?: string; browserFolder?: string }

runAsWorker(async (figureJson: string): Promise<ChartImageReply> => {
  clearTimeout(idle);
  try {
    renderer ??= findChromium().then((chromium) => PlotlySvgRenderer.open(chromium));
    const open = await renderer;
    const [svg] = await open.render([JSON.parse(figureJson) as Figure]);
    idle = setTimeout(() => {
      renderer = undefined;
      void open.close().catch(() => undefined);
    }, IDLE_MS);
    return { svg, browserFolder: open.folder };
  } catch (err) {
    const failed = renderer;
    renderer = undefined;
    void failed?.then((r) => r.close()).catch(() => undefined);
    return { error: (err as Error).message.split('\n')[0] };
  }
});
