/**
 * The report's charts as Plotly figures, rendered to SVG (vector) by Plotly itself in a
 * headless Chromium page. Sized to fit an A4 page (560 px wide).
 */
import puppeteer from 'puppeteer';
import { linesByWorkers, SweepData } from '../lib/runs/sweep';
import { Figure, plotlySource } from '../lib/util/html';
import type { Browser } from './chromium';



export const CHART_WIDTH = 560;
const COLOURS = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2'];

const base = (title: string, xTitle: string, yTitle: string, height = 300): Record<string, unknown> => ({
  title: { text: title, font: { size: 14 } }, width: CHART_WIDTH, height, margin: { l: 60, r: 20, t: 40, b: 50 },
  xaxis: { title: { text: xTitle } }, yaxis: { title: { text: yTitle } }, font: { family: 'DejaVu Sans, sans-serif', size: 11 },
  legend: { orientation: 'h', y: -0.25 },
});

/** Time per source line (mean per epoch) at each worker count, for the lines that take at least 1 ms per epoch. */
export function lineTimeFigure(d: SweepData): Figure {
  const epochs = (w: number) => Math.max(1, new Set(d.lines.filter((l) => l.workers === w).map((l) => l.epoch)).size);
  const lines = linesByWorkers(d.lines, d.workers)
    .filter((r) => d.workers.some((w) => Number(r[`time_w${w}`]) > 0.001 * epochs(w)));
  const label = (r: { function: string; line: number; contents: string }) =>
    `${r.function} ${r.line}: ${r.contents.length > 26 ? `${r.contents.slice(0, 25)}…` : r.contents}`;
  return {
    data: d.workers.map((w, i) => ({
      type: 'bar', orientation: 'h', name: `${w} worker${w === 1 ? '' : 's'}`, marker: { color: COLOURS[i % COLOURS.length] },
      y: lines.map(label),
      x: lines.map((r) => Number(r[`time_w${w}`]) / epochs(w)),
    })),
    layout: { ...base('Time per line, mean per epoch', 'seconds', ''), height: 120 + 28 * lines.length, barmode: 'group',
      yaxis: { autorange: 'reversed', automargin: true }, margin: { l: 230, r: 20, t: 40, b: 60 } },
  };
}

export function epochTimeFigure(d: SweepData): Figure {
  return {
    data: d.workers.map((w, i) => {
      const rows = d.epochs.filter((e) => e.workers === w);
      return { type: 'bar', name: `${w} worker${w === 1 ? '' : 's'}`, x: rows.map((e) => e.epoch), y: rows.map((e) => e.train_seconds), marker: { color: COLOURS[i % COLOURS.length] } };
    }),
    layout: { ...base('Training time per epoch', 'epoch', 'seconds'), barmode: 'group', xaxis: { title: { text: 'epoch' }, dtick: 1 } },
  };
}

/** The distribution of waits for the next batch, one box per worker count (log scale: most waits are tiny, a few are long). */
export function waitFigure(d: SweepData, headerLine: number): Figure {
  return {
    data: d.workers.map((w, i) => ({
      type: 'box', orientation: 'h', name: `${w} worker${w === 1 ? '' : 's'}`, marker: { color: COLOURS[i % COLOURS.length] },
      x: d.waits.filter((r) => r.workers === w && r.line === headerLine).flatMap((r) => r.seconds.map((s: number) => 1000 * s)),
      boxpoints: 'outliers', jitter: 0,
    })),
    layout: { ...base(`Waiting for the next batch (line ${headerLine}), per step`, 'milliseconds (log scale)', ''), height: 240,
      xaxis: { type: 'log', title: { text: 'milliseconds (log scale)' } }, showlegend: false, margin: { l: 90, r: 20, t: 40, b: 50 } },
  };
}

export function curveFigure(d: SweepData, key: 'test_accuracy' | 'train_loss', title: string, yTitle: string): Figure {
  return {
    data: d.workers.map((w, i) => {
      const rows = d.epochs.filter((e) => e.workers === w);
      return { type: 'scatter', mode: 'lines+markers', name: `${w} worker${w === 1 ? '' : 's'}`, x: rows.map((e) => e.epoch), y: rows.map((e) => e[key]),
        line: { color: COLOURS[i % COLOURS.length], dash: i ? 'dash' : 'solid' } };
    }),
    layout: { ...base(title, 'epoch', yTitle, 260), xaxis: { title: { text: 'epoch' }, dtick: 1 } },
  };
}

/** Renders figures to SVG strings with Plotly.toImage in one headless page. */
export async function renderSvgs(figures: Figure[], chromium: Browser, timeoutMs = 60_000): Promise<string[]> {
  const browser = await puppeteer.launch({ executablePath: chromium.path, args: chromium.args, headless: chromium.headless, timeout: timeoutMs });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(timeoutMs);
    await page.setContent('<!doctype html><html><body><div id="plot"></div></body></html>');
    await page.addScriptTag({ content: plotlySource() });
    const out: string[] = [];
    for (const figure of figures) {
      const url = await page.evaluate(async (json: string) => {
        const fig = JSON.parse(json) as { data: unknown[]; layout: { width: number; height: number } };
        const P = (globalThis as unknown as { Plotly: { toImage(f: unknown, o: unknown): Promise<string> } }).Plotly;
        return P.toImage(fig, { format: 'svg', width: fig.layout.width, height: fig.layout.height });
      }, JSON.stringify(figure));
      out.push(decodeURIComponent(String(url).replace(/^data:image\/svg\+xml,/, '')));
    }
    return out;
  } finally {
    await browser.close();
  }
}
