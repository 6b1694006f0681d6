/**
 * The report's charts as Plotly figures (rendered to SVG by lib/browser/plotly-svg), sized
 * to fit an A4 page (560 px wide).
 */
import { linesByWorkers, SweepData } from '../lib/runs/sweep';
import { EPOCH_SPAN, mergeTimelines, Span, ThreadTimeline } from '../lib/profiling/trace';
import type { Figure } from '../lib/util/html';


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

/** Colours of the timeline's spans: waiting is grey, the step's phases blue to green, the loader orange. */
const SPAN_COLOURS: Record<string, string> = {
  data: '#bab0ac', idle: '#e5e5e5', allreduce: '#9d9d9d', scatter: '#72b7b2', forward: '#4c78a8', loss: '#9ecae9', backward: '#54a24b',
  optimizer: '#b279a2', build: '#f58518', handover: '#e45756', test: '#eeca3b',
};
/** Spans that contain others on the same track (drawn through their parts instead). */
const CONTAINERS = (name: string) => EPOCH_SPAN.test(name) || name === 'step';

/**
 * A window of `steps` training steps from the middle of a run's last epoch: the main
 * thread's step spans, from the wait before the first to the end of the last.
 */
export function timelineWindow(threads: ThreadTimeline[], steps = 4): { start: number; end: number } | undefined {
  const main = threads.find((t) => t.thread === 'main');
  const epochs = (main?.spans ?? []).filter((s) => EPOCH_SPAN.test(s.name)).sort((a, b) => a.start - b.start);
  const last = epochs.at(-1);
  if (!main || !last) return undefined;
  const inLast = main.spans.filter((s) => s.name === 'step' && s.start >= last.start && s.end <= last.end).sort((a, b) => a.start - b.start);
  if (!inLast.length) return undefined;
  const first = Math.max(0, Math.floor(inLast.length / 2) - Math.floor(steps / 2));
  const chosen = inLast.slice(first, first + steps);
  const waitBefore = main.spans.filter((s) => s.name === 'data' && s.end <= chosen[0].start + 1e-6).sort((a, b) => b.end - a.end)[0];
  return { start: waitBefore?.start ?? chosen[0].start, end: chosen[chosen.length - 1].end };
}

/**
 * Every thread's timeline in a window of steps from the middle of the last epoch: one
 * panel per worker count (the lower above), one row per thread, a bar per span.
 */
export function timelineFigure(d: SweepData, workers = [d.workers[0], d.workers[d.workers.length - 1]]): Figure | undefined {
  const panels = workers.flatMap((w) => {
    const threads = d.timelines[w] ? mergeTimelines(d.timelines[w]) : undefined;
    const window = threads && timelineWindow(threads);
    return threads && window ? [{ w, threads, window }] : [];
  });
  if (!panels.length) return undefined;
  const rows = panels.map((p) => p.threads.length);
  const total = rows.reduce((a, b) => a + b, 0);
  const gap = 0.1;
  const span = Math.max(...panels.map((p) => p.window.end - p.window.start));
  const data: Record<string, unknown>[] = [];
  const layout: Record<string, unknown> = {
    ...base('Every thread during a few training steps (middle of the last epoch)', '', '', 110 + 24 * total + 40 * panels.length),
    barmode: 'overlay', margin: { l: 120, r: 20, t: 90, b: 50 }, legend: { orientation: 'h', x: 0, y: 1.01, yanchor: 'bottom', traceorder: 'normal' },
    title: { text: 'Every thread during a few training steps (middle of the last epoch)', font: { size: 14 }, y: 0.99, yanchor: 'top' },
  };
  const shown = new Set<string>();
  let top = 1;
  panels.forEach((p, i) => {
    const height = (1 - gap * (panels.length - 1)) * (p.threads.length / total);
    const axis = i === 0 ? '' : String(i + 1);
    layout[`yaxis${axis}`] = { domain: [Math.max(0, top - height), top], autorange: 'reversed', automargin: true, type: 'category',
      title: { text: `${p.w} worker${p.w === 1 ? '' : 's'}`, font: { size: 11 } } };
    layout[`xaxis${axis}`] = { anchor: `y${axis}`, range: [0, span], title: { text: i === panels.length - 1 ? 'milliseconds from the window start' : '' } };
    top -= height + gap;
    // Every thread gets its row, also one with nothing in the window (a worker idle all along).
    data.push({ type: 'bar', orientation: 'h', name: '', showlegend: false, hoverinfo: 'skip', y: p.threads.map((t) => t.thread),
      x: p.threads.map(() => 0), base: p.threads.map(() => 0), xaxis: `x${axis}`, yaxis: `y${axis}`, marker: { color: 'rgba(0,0,0,0)' } });
    const byName = new Map<string, { y: string[]; x: number[]; base: number[] }>();
    for (const t of p.threads) {
      for (const s of t.spans as Span[]) {
        if (CONTAINERS(s.name) || s.end <= p.window.start || s.start >= p.window.end) continue;
        const start = Math.max(s.start, p.window.start);
        const end = Math.min(s.end, p.window.end);
        let e = byName.get(s.name);
        if (!e) byName.set(s.name, (e = { y: [], x: [], base: [] }));
        e.y.push(t.thread);
        e.base.push(start - p.window.start);
        e.x.push(end - start);
      }
    }
    for (const [name, e] of byName) {
      data.push({ type: 'bar', orientation: 'h', name, legendgroup: name, showlegend: !shown.has(name), ...e,
        xaxis: `x${axis}`, yaxis: `y${axis}`, marker: { color: SPAN_COLOURS[name] ?? '#888', line: { width: 0 } }, width: 0.7 });
      shown.add(name);
    }
  });
  return { data, layout };
}
