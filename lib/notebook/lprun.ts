/**
 * `%lprun` for tslab notebooks: run an expression with the line profiler on, then show
 * line_profiler's table for the functions named (an HTML table with a bar per line's share
 * of the function's time, and line_profiler's text under it). Functions written in a cell
 * are timed line by line with the project's kernel (notebook/cell-profiler.ts); the
 * project's own profiled functions (trainEpoch, trainStep, ...) can be shown beside them.
 * What each lprun recorded is kept, to show together (showLineProfile) or drop (resetLineProfile).
 */
import { formatText } from '../profiling/format';
import { FunctionStats, isProfiling, isRegistered, mergeStats, reset, setProfiling, snapshot } from '../profiling/runtime';
import { escapeHtml } from '../util/html';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const tslab = () => require('tslab') as { display: { html(s: string): void } };

/** A function to show: the function itself or its name. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export type FunctionRef = Function | string;

let collected: FunctionStats[][] = [];

const nameOf = (f: FunctionRef) => (typeof f === 'string' ? f : f.name);

/** The stats of the functions asked for (all that ran when none are named), in the order asked. */
function select(stats: FunctionStats[], functions?: FunctionRef[]): { shown: FunctionStats[]; missing: string[] } {
  if (!functions?.length) return { shown: stats, missing: [] };
  const names = functions.map(nameOf);
  // A method is recorded as Class.method: its bare name (or the method itself, whose name is bare) finds it too.
  const matches = (s: FunctionStats, n: string) => s.meta.name === n || s.meta.name.endsWith(`.${n}`);
  const shown = names.flatMap((n) => stats.filter((s) => matches(s, n)));
  return { shown, missing: names.filter((n) => !stats.some((s) => matches(s, n))) };
}

/** line_profiler's table of one function as HTML, with a bar per line's share of the function's time. */
export function lineProfileHtml(s: FunctionStats): string {
  const total = [...s.lines.values()].reduce((n, c) => n + c.seconds, 0);
  const { meta } = s;
  const head = `<p style="margin:8px 0 2px"><b>Function: ${escapeHtml(meta.name)}</b> at line ${meta.line} of <code>${escapeHtml(meta.file)}</code>` +
    ` &mdash; total ${total.toPrecision(4)} s, ${s.calls} call${s.calls === 1 ? '' : 's'}</p>` +
    (meta.wholeFunction ? `<p style="margin:2px 0;color:#a33">${escapeHtml(meta.note ?? 'Whole-function timing only: this function was not instrumented line by line (use the project kernel, npm run kernel).')}</p>` : '');
  const rows = meta.source.map((text, i) => {
    const line = meta.line + i;
    const c = s.lines.get(line);
    const share = c && total > 0 ? c.seconds / total : 0;
    const cells = c && c.hits > 0
      ? [String(line), String(c.hits), (c.seconds * 1e6).toFixed(1), ((c.seconds * 1e6) / c.hits).toFixed(1), (100 * share).toFixed(1)]
      : [String(line), '', '', '', ''];
    const bar = `<div style="background:#4c78a8;height:9px;width:${(100 * share).toFixed(1)}%"></div>`;
    return `<tr>${cells.map((v) => `<td style="text-align:right">${v}</td>`).join('')}<td style="width:110px">${bar}</td>` +
      `<td style="text-align:left;white-space:pre-wrap;font-family:monospace">${escapeHtml(text.replace(/\s+$/, ''))}</td></tr>`;
  }).join('');
  return `${head}<table class="dataframe lprun"><thead><tr><th>Line #</th><th>Hits</th><th>Time (µs)</th><th>Per Hit</th><th>% Time</th><th></th>` +
    `<th style="text-align:left">Line Contents</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** The tables of `stats` with their bars, then `notes` (HTML), then line_profiler's `text` (folded). */
export function lineProfileBlock(stats: FunctionStats[], text: string, notes = ''): string {
  return `<div class="line-profile">${stats.map(lineProfileHtml).join('')}${notes}` +
    `<details><summary>line_profiler's text</summary><pre style="font-size:11px">${escapeHtml(text)}</pre></details></div>`;
}

function show(stats: FunctionStats[], functions?: FunctionRef[]): void {
  const { shown, missing } = select(stats, functions);
  const notes = missing.map((n) => `<p style="color:#a33">${escapeHtml(n)}: not called while profiling (or not marked with profile(...))</p>`).join('');
  tslab().display.html(lineProfileBlock(shown, formatText(shown), notes));
}

/**
 * Runs `run` with the line profiler on and shows the tables of `functions` (every profiled
 * function that ran, if none are named), as `%lprun -f f1 -f f2 statement` does; returns
 * what `run` returns. Recording is as it was afterwards. `show: false` only records (read
 * it with lineProfileStats, e.g. to lay two runs side by side with lineProfileHtml).
 */
export async function lprun<T>(run: () => T | Promise<T>, functions?: FunctionRef[], options: { show?: boolean } = {}): Promise<T> {
  const wasOn = isProfiling();
  setProfiling(true);
  reset();
  let result: T;
  try {
    result = await run();
  } finally {
    const recorded = snapshot();
    setProfiling(wasOn);
    reset();
    collected.push(recorded);
    if (options.show ?? true) show(recorded, functions);
  }
  return result;
}

/** What the lprun calls recorded, added up; a function a later cell redefined is left out (its stats start over). */
const current = () => mergeStats(collected).filter((s) => isRegistered(s.meta.id));

/** Everything the lprun calls so far recorded, added up (optionally only `functions`). */
export function lineProfileStats(functions?: FunctionRef[]): FunctionStats[] {
  return select(current(), functions).shown;
}

/** line_profiler's text of everything recorded so far. */
export function lineProfileText(functions?: FunctionRef[]): string {
  return formatText(lineProfileStats(functions));
}

/** Shows the tables of everything the lprun calls so far recorded, added up. */
export function showLineProfile(functions?: FunctionRef[]): void {
  show(current(), functions);
}

/** Forgets what the lprun calls recorded. */
export function resetLineProfile(): void {
  collected = [];
}
