/**
 * Display helpers for the tslab notebooks in notebooks/: live training progress, HTML
 * tables (from rows or a danfo DataFrame), Plotly charts (interactive where a viewer can,
 * a static image everywhere, offline), and digits as PNG images. Everything renders
 * through tslab's display API.
 */
import { PNG } from 'pngjs';
import type { DataFrame } from 'danfojs-node';
import type { Progress } from '../training/progress';
import type { ProfileSession } from '../profiling/session';
import { lineProfileBlock } from './lprun';
import { escapeHtml, Figure } from '../util/html';
import { chartSvg } from './chart-image';
import { PLOTLY_NBEXTENSION } from './jupyter';

interface TslabDisplay { html(s: string): void; png(b: Uint8Array): void; text(s: string): void }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tslab = () => require('tslab') as { display: TslabDisplay; newDisplay(): TslabDisplay };

const escape = escapeHtml;

/** An HTML table of rows (objects with the same keys) or of a danfo DataFrame. */
export function htmlTable(source: Record<string, unknown>[] | DataFrame, digits = 4): string {
  const isFrame = !Array.isArray(source);
  const columns = isFrame ? (source as DataFrame).columns : Object.keys((source as Record<string, unknown>[])[0] ?? {});
  const rows: unknown[][] = isFrame ? ((source as DataFrame).values as unknown[][])
    : (source as Record<string, unknown>[]).map((r) => columns.map((c) => r[c]));
  const cell = (v: unknown) => typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(digits) : escape(v);
  return `<table class="dataframe"><thead><tr>${columns.map((c) => `<th>${escape(c)}</th>`).join('')}</tr></thead><tbody>` +
    rows.map((r) => `<tr>${r.map((v) => `<td style="text-align:${typeof v === 'number' ? 'right' : 'left'}">${cell(v)}</td>`).join('')}</tr>`).join('') +
    '</tbody></table>';
}

export function showTable(source: Record<string, unknown>[] | DataFrame, digits = 4): void {
  tslab().display.html(htmlTable(source, digits));
}

let chartCounter = 0;

/** A figure as plain JSON: typed arrays become arrays (Plotly's JSON MIME type has no other). */
function plainFigure(figure: Figure): Figure {
  return JSON.parse(JSON.stringify(figure, (_key, value: unknown) => ArrayBuffer.isView(value) && !(value instanceof DataView)
    ? Array.from(value as unknown as ArrayLike<number>) : value)) as Figure;
}

function chartTitle(figure: Figure): string {
  const title = figure.layout.title as string | { text?: string } | undefined;
  return (typeof title === 'string' ? title : title?.text) ?? 'chart';
}

/**
 * A chart as a MIME bundle, one output that each viewer reads its own way:
 * - application/vnd.plotly.v1+json, drawn interactively by JupyterLab's and VS Code's Plotly renderers;
 * - text/html, the static image, which the classic notebook replaces with an interactive chart when the
 *   notebook is trusted, from the plotly.js that `npm run kernel` installs (not inlined: no 4.7 MB per notebook);
 *   untrusted notebooks, nbconvert's HTML, GitHub and nbviewer keep the image;
 * - image/svg+xml, the same image for viewers that take no HTML; text/plain names the chart.
 * `svg` is Plotly's own rendering of the figure (chart-image.ts); without one the HTML says why.
 */
export function plotlyBundle(figure: Figure, image: { svg?: string; error?: string }): Record<string, unknown> {
  const fig = plainFigure(figure);
  const id = `mnist-lab-chart-${Date.now()}-${++chartCounter}`;
  const title = chartTitle(fig);
  const still = image.svg
    ? `<img alt="${escape(title)}" src="data:image/svg+xml;base64,${Buffer.from(image.svg).toString('base64')}">`
    : `<pre>${escape(`Chart "${title}": no static image (${image.error ?? 'not rendered'}); interactive where plotly.js is available.`)}</pre>`;
  const json = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c');
  const script = `<script>(function () {
  var el = document.getElementById(${json(id)}), fig = ${json(fig)};
  var draw = function (Plotly) { if (!Plotly) return; el.innerHTML = ''; Plotly.newPlot(el, fig.data, fig.layout); };
  if (!el) return;
  if (window.Plotly) return draw(window.Plotly);
  var base = window.Jupyter && window.Jupyter.notebook && window.Jupyter.notebook.base_url;
  if (!base || !window.requirejs) return; // not the classic notebook: the image stays
  window.requirejs.config({ paths: { 'mnist-lab-plotly': base + 'nbextensions/${PLOTLY_NBEXTENSION}' } });
  // plotly.js 4 defines no AMD module: it sets window.Plotly when loaded.
  window.requirejs(['mnist-lab-plotly'], function () { draw(window.Plotly); }, function () {});
})();</script>`;
  const bundle: Record<string, unknown> = {
    'application/vnd.plotly.v1+json': { data: fig.data, layout: fig.layout },
    'text/html': `<div id="${id}" class="mnist-lab-chart">${still}</div>${script}`,
    'text/plain': `Plotly chart: ${title}`,
  };
  if (image.svg) bundle['image/svg+xml'] = image.svg;
  return bundle;
}

/** Shows a Plotly figure in the current cell (see plotlyBundle); blocks while its static image is drawn. */
export function showPlot(figure: Figure): void {
  displayBundle(plotlyBundle(figure, chartSvg(figure)));
}

/** One display_data output with several MIME types (tslab's display API sends one type per output). */
function displayBundle(data: Record<string, unknown>): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const jupyter = require('tslab/dist/jupyter') as { lastWriteDisplayData: ((d: unknown, update: boolean) => void) | null };
  if (!jupyter.lastWriteDisplayData) throw new Error('showPlot: no notebook cell is running (it displays through the tslab kernel)');
  jupyter.lastWriteDisplayData({ data, metadata: {}, transient: {} }, false);
}

/** A grey-scale PNG of a width x height image (dark digits on white), scaled up by `scale`. */
export function grayPng(pixels: Uint8Array, width = 28, height = 28, scale = 3): Uint8Array {
  const png = new PNG({ width: width * scale, height: height * scale, colorType: 0, inputColorType: 0, bitDepth: 8 });
  const data = Buffer.alloc(png.width * png.height);
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) data[y * png.width + x] = 255 - pixels[Math.floor(y / scale) * width + Math.floor(x / scale)];
  }
  return PNG.sync.write(Object.assign(png, { data }), { colorType: 0, inputColorType: 0 });
}

/**
 * Training progress for a notebook: one output that updates in place (a progress bar
 * and the last log lines), redrawn at most every 300 ms; a profiled run's line profile
 * follows whole, as an output of its own (`output`). tslab sends each update over a
 * ZeroMQ socket that refuses a second send while one is in flight (EBUSY): such a frame is
 * kept and drawn by the next update, or by a retry after stop(); it never fails training.
 */
export function notebookProgress(keepLines = 12, display: Pick<TslabDisplay, 'html'> = tslab().newDisplay(),
  output: (html: string) => void = (html) => tslab().display.html(html)): Progress & { lines: string[] } {
  const lines: string[] = [];
  let label = '';
  let done = 0;
  let total = 1;
  let extra = '';
  let last = 0;
  let pending = false;
  const render = () => {
    const pct = Math.round((100 * done) / total);
    return `<div><b>${escape(label)}</b> <progress value="${done}" max="${total}" style="width:300px"></progress> ` +
      `${done}/${total} (${pct}%) ${escape(extra)}</div><pre style="font-size:11px">${escape(lines.slice(-keepLines).join('\n'))}</pre>`;
  };
  const send = (): boolean => {
    try {
      display.html(render());
      pending = false;
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY') throw err;
      pending = true;
      return false;
    }
  };
  const draw = (force = false) => {
    const now = Date.now();
    if (!force && !pending && now - last < 300) return;
    last = now;
    send();
  };
  const flush = (tries: number) => {
    if (pending && !send() && tries > 0) setTimeout(() => flush(tries - 1), 50);
  };
  return {
    lines,
    line(text: string) {
      lines.push(...text.split('\n'));
      draw(true);
    },
    start(l: string, t: number) {
      label = l;
      total = t;
      done = 0;
      draw(true);
    },
    update(d: number, loss: number, speed: number) {
      done = d;
      extra = `loss ${Number.isNaN(loss) ? '-' : loss.toFixed(4)} · ${speed.toFixed(0)} samples/s`;
      draw();
    },
    stop() {
      if (!send()) flush(20);
    },
    // The whole line profile as an output of its own, below the progress (which keeps the last lines only).
    lineProfile(session: ProfileSession) {
      lines.push('Line profile: below (and in the run folder\'s line-profile.txt)');
      draw(true);
      output(lineProfileBlock([...session.stats(), ...session.workerStats()], session.text()));
    },
  };
}
