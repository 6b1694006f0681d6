/**
 * Display helpers for the tslab notebooks in notebooks/: live training progress, HTML
 * tables (from rows or a danfo DataFrame), interactive Plotly charts that work offline,
 * and digits as PNG images. Everything renders through tslab's display API.
 */
import { PNG } from 'pngjs';
import type { DataFrame } from 'danfojs-node';
import type { Progress } from '../training/progress';
import type { ProfileSession } from '../profiling/session';
import { lineProfileBlock } from './lprun';
import { escapeHtml, Figure, plotlySource } from '../util/html';

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

let plotlyShipped = false;
let plotCounter = 0;

/**
 * HTML for an interactive Plotly chart. The first chart of a session carries plotly.js
 * itself (offline: no CDN), loaded so that the classic notebook's require.js does not
 * capture it.
 */
export function plotlyHtml(figure: Figure): string {
  const id = `plot-${Date.now()}-${++plotCounter}`;
  let lib = '';
  if (!plotlyShipped) {
    const source = plotlySource();
    lib = `<script>(function(){var define=undefined,module=undefined,exports=undefined;${source}\n}).call(window);</script>`;
    plotlyShipped = true;
  }
  return `${lib}<div id="${id}" class="plotly-chart" style="width:${figure.layout.width ?? 600}px"></div>` +
    `<script>window.Plotly.newPlot(${JSON.stringify(id)}, ${JSON.stringify(figure.data)}, ${JSON.stringify(figure.layout)});</script>`;
}

export function showPlot(figure: Figure): void {
  tslab().display.html(plotlyHtml(figure));
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
