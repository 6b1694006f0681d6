/** HTML for pages and notebook outputs: escaping, and Plotly figures with plotly.js inlined (offline: no CDN). */
import fs from 'node:fs';

/** Text as HTML: `&`, `<` and `>` escaped. */
export function escapeHtml(s: unknown): string {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A Plotly figure: traces and layout, as Plotly.newPlot and Plotly.toImage take them. */
export interface Figure { data: Record<string, unknown>[]; layout: Record<string, unknown> }

/** plotly.js itself, to inline into a page or a headless browser. */
export function plotlySource(): string {
  return fs.readFileSync(require.resolve('plotly.js-dist-min'), 'utf8');
}
