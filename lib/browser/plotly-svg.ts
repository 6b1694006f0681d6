/**
 * Plotly figures → SVG (vector), drawn by Plotly itself (Plotly.toImage) in a headless
 * Chromium page: the report's charts, and the static image beside a notebook's chart.
 */
import puppeteer, { type Browser as Puppeteer, type Page } from 'puppeteer';
import type { Browser } from './chromium';
import { openBrowserFolder } from './folders';
import { type Figure, plotlySource } from '../util/html';

/** One browser and one page with plotly.js loaded, kept for many figures (loading plotly.js is most of a launch's 5 s). */
export class PlotlySvgRenderer {
  private constructor(private readonly browser: Puppeteer, private readonly page: Page,
    /** The browser's own folder (profile and TMPDIR), removed by close(). */
    readonly folder: string, private readonly removeFolder: () => void) {}

  static async open(chromium: Browser, timeoutMs = 60_000): Promise<PlotlySvgRenderer> {
    const folder = openBrowserFolder();
    let browser: Puppeteer | undefined;
    try {
      // pipe: the browser quits when this process does, even if close() is never reached (a notebook kernel shut down).
      browser = await puppeteer.launch({ executablePath: chromium.path, args: chromium.args, headless: chromium.headless, timeout: timeoutMs,
        userDataDir: folder.userDataDir, env: folder.env, pipe: true });
      const page = await browser.newPage();
      page.setDefaultTimeout(timeoutMs);
      await page.setContent('<!doctype html><html><body><div id="plot"></div></body></html>');
      await page.addScriptTag({ content: plotlySource() });
      return new PlotlySvgRenderer(browser, page, folder.dir, folder.remove);
    } catch (err) {
      await browser?.close().catch(() => undefined);
      folder.remove();
      throw err;
    }
  }

  async render(figures: Figure[]): Promise<string[]> {
    const out: string[] = [];
    for (const figure of figures) {
      const url = await this.page.evaluate(async (json: string) => {
        const fig = JSON.parse(json) as { data: unknown[]; layout: { width: number; height: number } };
        const P = (globalThis as unknown as { Plotly: { toImage(f: unknown, o: unknown): Promise<string> } }).Plotly;
        return P.toImage(fig, { format: 'svg', width: fig.layout.width, height: fig.layout.height });
      }, JSON.stringify(figure));
      out.push(decodeURIComponent(String(url).replace(/^data:image\/svg\+xml,/, '')));
    }
    return out;
  }

  async close(): Promise<void> {
    try {
      await this.browser.close();
    } finally {
      this.removeFolder();
    }
  }
}

/** Renders figures to SVG strings in one headless page, launched for this call. */
export async function renderSvgs(figures: Figure[], chromium: Browser, timeoutMs = 60_000): Promise<string[]> {
  const renderer = await PlotlySvgRenderer.open(chromium, timeoutMs);
  try {
    return await renderer.render(figures);
  } finally {
    await renderer.close();
  }
}
