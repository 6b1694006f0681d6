/**
 * Offline run tracking: every run folder holds config.json, metrics.jsonl, batches.jsonl
 * and checkpoints. These functions find them, summarise them as a table, and compare two.
 */
import fs from 'node:fs';
import path from 'node:path';
import { escapeHtml, plotlySource } from '../util/html';
import { BatchRecord, EpochMetrics, RUN_FILES, RunConfig, RunFolder } from './run-folder';

export interface RunSummary {
  dir: string;
  model: string;
  data: string;
  epochs: string;
  workers: number;
  best_accuracy: number;
  train_seconds: number;
  backend: string;
  created: string;
}

export function readRun(dir: string): { config: RunConfig; metrics: EpochMetrics[]; batches: BatchRecord[] } {
  const run = new RunFolder(dir);
  return { config: run.readConfig(), metrics: run.readMetrics(), batches: run.readBatches() };
}

/** Run folders under `root` (any depth up to 5), newest first; a damaged one is reported in `damaged`, not thrown. */
export function findRuns(root: string, damaged: { dir: string; reason: string }[] = []): RunSummary[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (depth > 5 || !fs.existsSync(dir)) return;
    const run = new RunFolder(dir);
    if (run.isRun && run.has('metrics')) found.push(dir);
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name), depth + 1);
  };
  walk(root, 0);
  return found.flatMap((dir) => {
    let run: ReturnType<typeof readRun>;
    try {
      run = readRun(dir);
    } catch (err) {
      damaged.push({ dir, reason: (err as Error).message });
      return [];
    }
    const { config, metrics } = run;
    const o = config.options;
    return [{
      dir, model: o.model ?? '?', data: config.data?.name ?? '?', epochs: `${metrics.length}/${o.epochs ?? '?'}`, workers: o.workers ?? 0,
      best_accuracy: Math.max(0, ...metrics.map((m) => m.test_accuracy)), train_seconds: metrics.reduce((a, m) => a + m.train_seconds, 0),
      backend: config.backend ?? '?', created: fs.statSync(path.join(dir, RUN_FILES.config)).mtime.toISOString().slice(0, 16).replace('T', ' '),
    }];
  }).sort((a, b) => b.created.localeCompare(a.created));
}

export function formatRunsTable(runs: RunSummary[], root: string): string {
  const head = ['run', 'model', 'data', 'epochs', 'workers', 'best acc %', 'train s', 'backend', 'created'];
  const rows = runs.map((r) => [path.relative(root, r.dir) || '.', r.model, r.data.length > 24 ? `…${r.data.slice(-23)}` : r.data, r.epochs,
    String(r.workers), r.best_accuracy.toFixed(2), r.train_seconds.toFixed(1), r.backend, r.created]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i >= 4 && i <= 6 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Two runs side by side, per epoch, and an HTML page with both runs' curves in one chart. */
export function compareRuns(a: string, b: string, htmlFile: string): string {
  const ra = readRun(a);
  const rb = readRun(b);
  const epochs = Math.max(ra.metrics.length, rb.metrics.length);
  const fmt = (m: EpochMetrics | undefined, k: 'train_loss' | 'test_accuracy' | 'train_seconds') => (m ? m[k].toFixed(k === 'train_loss' ? 4 : 2) : '-');
  const lines = [`A: ${a} (${ra.config.options?.model}, ${ra.config.options?.workers} workers)`, `B: ${b} (${rb.config.options?.model}, ${rb.config.options?.workers} workers)`, '',
    'epoch   loss A   loss B   acc A %  acc B %  time A s  time B s'];
  for (let e = 0; e < epochs; e++) {
    const [ma, mb] = [ra.metrics[e], rb.metrics[e]];
    lines.push([String(e + 1).padStart(5), fmt(ma, 'train_loss').padStart(8), fmt(mb, 'train_loss').padStart(8), fmt(ma, 'test_accuracy').padStart(8),
      fmt(mb, 'test_accuracy').padStart(8), fmt(ma, 'train_seconds').padStart(9), fmt(mb, 'train_seconds').padStart(9)].join(' '));
  }
  const trace = (r: ReturnType<typeof readRun>, name: string, key: 'test_accuracy' | 'train_loss', axis: string) =>
    ({ type: 'scatter', mode: 'lines+markers', name: `${name} ${key === 'train_loss' ? 'train loss' : 'test accuracy'}`, x: r.metrics.map((m) => m.epoch), y: r.metrics.map((m) => m[key]), yaxis: axis });
  const data = [trace(ra, 'A', 'test_accuracy', 'y'), trace(rb, 'B', 'test_accuracy', 'y'), trace(ra, 'A', 'train_loss', 'y2'), trace(rb, 'B', 'train_loss', 'y2')];
  const layout = { title: { text: 'A vs B: test accuracy (left) and training loss (right) per epoch' }, width: 900, height: 500,
    xaxis: { title: { text: 'epoch' }, dtick: 1 }, yaxis: { title: { text: 'test accuracy %' } }, yaxis2: { title: { text: 'train loss' }, overlaying: 'y', side: 'right' } };
  fs.writeFileSync(htmlFile, `<!doctype html><html><head><meta charset="utf-8"><title>Runs compared</title><script>${plotlySource()}</script></head><body>` +
    `<pre>${escapeHtml(lines.join('\n'))}</pre><div id="chart"></div><script>Plotly.newPlot('chart', ${JSON.stringify(data)}, ${JSON.stringify(layout)});</script></body></html>\n`);
  return lines.join('\n');
}
