/**
 * Display helpers for the tslab notebooks in notebooks/: live training progress, HTML
 * tables (from rows or a danfo DataFrame), interactive Plotly charts that work offline,
 * and digits as PNG images. Everything renders through tslab's display API.
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import type { DataFrame } from 'danfojs-node';
import type { Progress } from './progress';

interface TslabDisplay { html(s: string): void; png(b: Uint8Array): void; text(s: string): void }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const tslab = () => require('tslab') as { display: TslabDisplay; newDisplay(): TslabDisplay };

const escape = (s: unknown) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

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
export function plotlyHtml(figure: { data: unknown[]; layout: Record<string, unknown> }): string {
  const id = `plot-${Date.now()}-${++plotCounter}`;
  let lib = '';
  if (!plotlyShipped) {
    const source = fs.readFileSync(require.resolve('plotly.js-dist-min'), 'utf8');
    lib = `<script>(function(){var define=undefined,module=undefined,exports=undefined;${source}\n}).call(window);</script>`;
    plotlyShipped = true;
  }
  return `${lib}<div id="${id}" class="plotly-chart" style="width:${figure.layout.width ?? 600}px"></div>` +
    `<script>window.Plotly.newPlot(${JSON.stringify(id)}, ${JSON.stringify(figure.data)}, ${JSON.stringify(figure.layout)});</script>`;
}

export function showPlot(figure: { data: unknown[]; layout: Record<string, unknown> }): void {
  tslab().display.html(plotlyHtml(figure));
}

/** A grey-scale PNG (8-bit) of a width x height image, scaled up by `scale`. */
export function grayPng(pixels: Uint8Array, width = 28, height = 28, scale = 3): Uint8Array {
  const w = width * scale;
  const h = height * scale;
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = 255 - pixels[Math.floor(y / scale) * width + Math.floor(x / scale)];
  }
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(w, 0);
  header.writeUInt32BE(h, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grey-scale
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', header),
    chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** CRC-32 as PNG needs it (Node 20 has no zlib.crc32). */
function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

/**
 * Training progress for a notebook: one output that updates in place (a progress bar
 * and the last log lines), redrawn at most every 300 ms. tslab sends each update over a
 * ZeroMQ socket that refuses a second send while one is in flight (EBUSY): such a frame is
 * kept and drawn by the next update, or by a retry after stop(); it never fails training.
 */
export function notebookProgress(keepLines = 12, display: Pick<TslabDisplay, 'html'> = tslab().newDisplay()): Progress & { lines: string[] } {
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
  };
}
