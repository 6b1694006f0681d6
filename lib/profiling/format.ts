/**
 * Presentation of line-profiler results: line_profiler's text layout (show_text /
 * show_func: `Timer unit`, `Total time`, `File`, `Function: NAME at line N`, then the
 * `Line # Hits Time Per Hit % Time Line Contents` table, lines without hits blank),
 * rows for JSON, and a danfo DataFrame.
 */
import type { DataFrame } from 'danfojs-node';
import type { FunctionStats } from './runtime';

export interface LineRow {
  file: string;
  function: string;
  line: number;
  hits: number;
  time_s: number;
  per_hit_s: number;
  percent: number;
  contents: string;
  /** What the line is (its `@phase` tag, `loop` for other loop headers), or ''. */
  tag: string;
  /** Extra columns for the run (workers, epoch, ...). */
  [column: string]: string | number;
}

const TEMPLATE_WIDTHS = [6, 9, 12, 8, 8];

function row(cells: string[], contents: string): string {
  return cells.map((c, i) => c.padStart(TEMPLATE_WIDTHS[i])).join(' ') + '  ' + contents;
}

const fmt = (v: number) => v.toFixed(1).padStart(5);
/** Python's '%g' (6 significant digits; exponent form below 1e-4 or from 1e6). */
export function pyG(v: number): string {
  if (v === 0) return '0';
  const exp = Math.floor(Math.log10(Math.abs(Number(v.toPrecision(6)))));
  if (exp < -4 || exp >= 6) {
    const [mantissa, e] = v.toExponential(5).split('e');
    const m = mantissa.replace(/\.?0+$/, '');
    const n = Number(e);
    return `${m}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  return v.toFixed(Math.max(0, 5 - exp)).replace(/\.?0+$/, '');
}
const g = pyG;

const NOTEBOOK_NOTE = 'Note: whole-function timing only. Line timing needs the function in lib/ with @profile (or ' +
  'profile(function ...)): the project build instruments each of its lines; code written in a notebook cell is not built.';

/** One function's table, as line_profiler's show_func prints it. */
export function formatFunction(s: FunctionStats, unit = 1e-6): string {
  const { meta } = s;
  const total = [...s.lines.values()].reduce((n, c) => n + c.seconds, 0);
  const out = [`Total time: ${g(total)} s`, `File: ${meta.file}`, `Function: ${meta.name} at line ${meta.line}`, ''];
  if (meta.wholeFunction) out.push(meta.note ?? NOTEBOOK_NOTE, '');
  const header = row(['Line #', 'Hits', 'Time', 'Per Hit', '% Time'], 'Line Contents');
  out.push(header, '='.repeat(header.length));
  meta.source.forEach((text, i) => {
    const line = meta.line + i;
    const c = s.lines.get(line);
    const cells = c && c.hits > 0
      ? [String(line), String(c.hits), fmt(c.seconds / unit), fmt(c.seconds / unit / c.hits), fmt(total > 0 ? (100 * c.seconds) / total : 0)]
      : [String(line), '', '', '', ''];
    out.push(row(cells, text.replace(/\s+$/, '')));
  });
  return out.join('\n') + '\n';
}

/** The whole report, as `kernprof -l -v` / `python -m line_profiler` print it. */
export function formatText(stats: FunctionStats[], unit = 1e-6): string {
  return [`Timer unit: ${g(unit)} s`, '', ...stats.map((s) => formatFunction(s, unit))].join('\n');
}

/** One row per source line that ran, with extra columns (e.g. workers, epoch). */
export function toRows(stats: FunctionStats[], extra: Record<string, string | number> = {}): LineRow[] {
  const rows: LineRow[] = [];
  for (const s of stats) {
    const total = [...s.lines.values()].reduce((n, c) => n + c.seconds, 0);
    for (const [line, c] of [...s.lines.entries()].sort((a, b) => a[0] - b[0])) {
      if (c.hits === 0) continue;
      rows.push({
        file: s.meta.file, function: s.meta.name, line, hits: c.hits, time_s: c.seconds,
        per_hit_s: c.seconds / c.hits, percent: total > 0 ? (100 * c.seconds) / total : 0,
        contents: (s.meta.source[line - s.meta.line] ?? '').trim(), tag: s.meta.tags?.[line] ?? '', ...extra,
      });
    }
  }
  return rows;
}

/** The rows as a danfo DataFrame (danfo is loaded on first use). */
export function toDataFrame(rows: LineRow[]): DataFrame {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const dfd = require('danfojs-node') as typeof import('danfojs-node');
  return new dfd.DataFrame(rows.length ? rows : [{ file: '', function: '', line: 0, hits: 0, time_s: 0, per_hit_s: 0, percent: 0, contents: '', tag: '' }]);
}
