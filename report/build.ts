/**
 * `npm run report`: the two deliverable PDFs. architecture.pdf is derived from the model
 * definition; profiling.pdf from a 1-vs-8-worker sweep, run on the embedded default
 * when no results exist for the requested configuration (reused when they do).
 */
import fs from 'node:fs';
import path from 'node:path';
import { initBackend } from '../lib/engine/backend';
import { UserError } from '../lib/util/errors';
import { createModel, MODELS } from '../lib/models';
import { projectRoot } from '../lib/util/paths';
import { linesByWorkers, readSweep, runSweep, sweepComplete, SweepData } from '../lib/runs/sweep';
import { analyse } from './analysis';
import { curveFigure, epochTimeFigure, lineTimeFigure, renderSvgs, waitFigure } from './charts';
import { findChromium } from './chromium';
import { diagramSvg, modelFacts } from './model-facts';
import { renderPdf } from './render';

export interface ReportOptions {
  model: string;
  /** A sweep folder to use as it is (e.g. made under Slurm on a GPU node). */
  results?: string;
  fresh: boolean;
  workers: number[];
  epochs: number;
  limit?: number;
  data: string;
  out: string;
  log: (line: string) => void;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
/** A signed difference, without "-0.000". */
const signed = (x: number, digits = 3) => {
  const t = x.toFixed(digits);
  return Number(t) === 0 ? (0).toFixed(digits) : `${x > 0 ? '+' : ''}${t}`;
};
const today = () => new Date().toISOString().slice(0, 10);

/** Fills {{name}} placeholders; a placeholder left unfilled is an error, not a hole in the PDF. */
export function fill(template: string, values: Record<string, string>): string {
  const out = template.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    if (!(key in values)) throw new Error(`report template: no value for {{${key}}}`);
    return values[key];
  });
  return out;
}

function template(name: string): string {
  return fs.readFileSync(path.join(projectRoot(), 'report', 'templates', name), 'utf8');
}

const cell = (s: string | number) => String(s).replace(/\|/g, '\\|');

/** A Markdown pipe table; `right` marks numeric columns. */
export function mdTable(headers: string[], rows: (string | number)[][], right: boolean[] = []): string {
  const align = headers.map((_, i) => (right[i] ? '---:' : ':---'));
  return [`| ${headers.map(cell).join(' | ')} |`, `| ${align.join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

export function architectureMarkdown(modelKey: string): string {
  const model = createModel(modelKey, 1);
  const facts = modelFacts(model, model.name);
  model.dispose();
  const rows = facts.layers.map((l) => [l.name, l.kernel || '–', l.stride || '–', l.padding || '–', l.activation || '–',
    `[${l.outputShape.join(', ')}]`, fmt(l.params), fmt(l.macs), (l.activationBytes / 1024).toFixed(1)]);
  const rf = facts.layers.map((l) => [l.name, `[${l.outputShape.join(', ')}]`,
    l.rf ? `${l.rf.size}×${l.rf.size}` : 'whole image', l.rf ? String(l.rf.jump) : '–', l.rf ? l.rf.start.toFixed(1) : '–']);
  const shapeLayers = facts.layers.filter((l) => ['Conv2d', 'MaxPool2d', 'AvgPool2d', 'Flatten', 'AdaptiveAvgPool2d'].includes(l.type));
  return fill(template('architecture.md'), {
    title: `${facts.name}: architecture`,
    intro: `${capitalize(MODELS[modelKey].description)}. Input: one ${facts.inputShape.slice(1).join('×')} grey-scale image ` +
      `(${facts.inputShape.join('×')}); output: log-probabilities of the 10 digits. ${facts.layers.length} layers, ` +
      `${fmt(facts.totalParams)} parameters.`,
    diagram: diagramSvg(facts),
    layer_table: mdTable(['Layer', 'Kernel', 'Stride', 'Padding', 'Activation', 'Output shape', 'Parameters', 'Mult-adds', 'Act. KB'],
      rows, [false, false, true, true, false, false, true, true, true]),
    total_params: fmt(facts.totalParams),
    params_mb: ((facts.totalParams * 4) / 2 ** 20).toFixed(2),
    total_macs: fmt(facts.totalMacs),
    activation_kb: (facts.totalActivationBytes / 1024).toFixed(1),
    input_hw: facts.inputShape.slice(1).join('×'),
    rf_table: mdTable(['Layer', 'Output shape', 'Receptive field', 'Jump', 'Start'], rf, [false, false, true, true, true]),
    roles: facts.layers.map((l) => `- **${l.name}** ${l.role}`).join('\n'),
    shapes: shapeLayers.map((l) => `- **${l.name}**: ${l.role.replace(/^[^.]*?(With|takes|lays|averages)/, '$1')}`).join('\n'),
    model_key: `--model ${modelKey}`,
    date: today(),
  });
}

export function profilingMarkdown(d: SweepData, charts: Record<string, string>): string {
  const a = analyse(d);
  const [lowW, highW] = [a.low.workers, a.high.workers];
  const m = d.machine;
  const env: (string | number)[][] = [
    ['CPU', `${m.cpu_model}, ${m.cpus} cores available`],
    ['Memory', `${m.memory_gb} GB`],
    ['Backend', d.config.backendLine ?? `${d.config.backend}: ${d.config.engine}`],
    ['Versions', `Node ${m.node}, TensorFlow.js ${m.tfjs}`],
    ['Data', `${d.config.data}: ${fmt(d.config.train)} training and ${fmt(d.config.test)} test images. ${d.config.note}`],
    ['Training', `${d.config.model}, ${d.config.epochs} epochs, batch ${d.config.batchSize}, workers ${d.workers.join(' and ')}, ` +
      (a.low.computeThreads === a.high.computeThreads ? `${a.low.computeThreads} compute thread${a.low.computeThreads === 1 ? '' : 's'}`
        : `${a.low.computeThreads} and ${a.high.computeThreads} compute threads`)],
  ];
  if (m.slurm_job_id) env.push(['Slurm', `job ${m.slurm_job_id}, ${m.slurm_cpus_per_task || '?'} CPUs per task`]);

  // Side by side: total seconds per line (of each profiled function) and worker count.
  const sumOf = (w: number) => d.lines.filter((l) => l.workers === w && l.function === a.loop.function).reduce((x, l) => x + l.time_s, 0);
  const [sumLow, sumHigh] = [sumOf(lowW), sumOf(highW)];
  const short = (c: string) => `\`${c.length > 44 ? `${c.slice(0, 43)}…` : c}\``;
  const side = linesByWorkers(d.lines, [lowW, highW]).map((r) => {
    const [tl, th] = [Number(r[`time_w${lowW}`]), Number(r[`time_w${highW}`])];
    return [r.function, r.line, short(r.contents), tl.toFixed(3), (100 * tl / sumLow).toFixed(1), th.toFixed(3), (100 * th / sumHigh).toFixed(1), signed(th - tl)];
  });
  side.push(['', '', `**total of ${a.loop.function}**`, sumLow.toFixed(3), '100.0', sumHigh.toFixed(3), '100.0', signed(sumHigh - sumLow)]);
  const files = [...new Set(d.lines.map((l) => `\`${l.function}\` (${l.file})`))];

  return fill(template('profiling.md'), {
    title: `Line profile of MNIST training: ${lowW} vs ${highW} data-loader workers`,
    intro: `The training loop (${files.join(', ')}) was line-profiled while training ${d.config.model} for ` +
      `${d.config.epochs} epochs with ${d.workers.map((w) => `${w}`).join(' and ')} DataLoader workers, each in a fresh process with the same seed. ` +
      `Epoch time: ${a.low.epochSeconds.toFixed(1)} s vs ${a.high.epochSeconds.toFixed(1)} s; final test accuracy ` +
      `${a.low.finalAccuracy.toFixed(2)}% vs ${a.high.finalAccuracy.toFixed(2)}%.`,
    environment_table: mdTable(['What', 'Value'], env),
    analysis: a.sentences.map((s) => `- ${s}`).join('\n'),
    functions: files.join(' and '),
    epochs: String(d.config.epochs),
    side_by_side: mdTable(['Function', 'Line', 'Contents', `s (${lowW}w)`, `% (${lowW}w)`, `s (${highW}w)`, `% (${highW}w)`, 'change s'],
      side, [false, true, false, true, true, true, true, true]),
    loop_function: a.loop.function,
    chart_lines: charts.lines,
    chart_epochs: charts.epochs,
    chart_waits: charts.waits,
    chart_accuracy: charts.accuracy,
    chart_loss: charts.loss,
    profiles: d.workers.map((w) => `### ${w} worker${w === 1 ? '' : 's'}\n\n\`\`\`text\n${d.texts[w].trimEnd()}\n\`\`\``).join('\n\n'),
    results_dir: path.relative(projectRoot(), d.dir) || d.dir,
    date: today(),
  });
}

/** The sweep folder for a configuration: reused when complete, else run (or rerun with --fresh). */
export async function ensureResults(o: ReportOptions): Promise<string> {
  if (o.results) {
    if (!fs.existsSync(o.results)) throw new UserError(`--results ${o.results}: no such folder`);
    return path.resolve(o.results);
  }
  const key = [o.data === 'embedded' ? 'embedded' : path.basename(path.resolve(o.data)), o.model, `e${o.epochs}`,
    `w${o.workers.join('-')}`, ...(o.limit ? [`n${o.limit}`] : [])].join('_');
  const dir = path.join(projectRoot(), 'runs', 'report', key);
  if (sweepComplete(dir, o.workers, o.epochs) && !o.fresh) {
    o.log(`Reusing the sweep in ${dir} (--fresh runs it again)`);
    return dir;
  }
  o.log(`Running the ${o.workers.join('-vs-')}-worker sweep (${o.epochs} epochs on ${o.data}) into ${dir}`);
  const trainArgs = ['--epochs', String(o.epochs), '--model', o.model, '--data', o.data, ...(o.limit ? ['--limit', String(o.limit)] : [])];
  await runSweep({ workers: o.workers, out: dir, trainArgs, log: o.log, fresh: o.fresh });
  return dir;
}

export async function buildReports(o: ReportOptions): Promise<{ architecture: string; profiling: string }> {
  if (!MODELS[o.model]) throw new UserError(`unknown model '${o.model}'`);
  const chromium = findChromium();
  o.log(`Chromium: ${chromium.path} (${chromium.source})`);
  const resultsDir = await ensureResults(o);
  const t0 = performance.now();
  await initBackend('cpu'); // building a model for its facts needs no speed
  const architecture = path.join(o.out, 'architecture.pdf');
  const archMd = architectureMarkdown(o.model);
  const sweep = readSweep(resultsDir);
  const a = analyse(sweep);
  const [lines, epochs, waits, accuracy, loss] = await renderSvgs([
    lineTimeFigure(sweep), epochTimeFigure(sweep), waitFigure(sweep, a.headerLine),
    curveFigure(sweep, 'test_accuracy', 'Test accuracy per epoch', '%'), curveFigure(sweep, 'train_loss', 'Training loss per epoch', 'NLL'),
  ], chromium.path);
  const noWaits = '<p class="small">No per-step waiting times in these results: they were recorded by an older version (rerun the sweep with --fresh).</p>';
  const profMd = profilingMarkdown(sweep, { lines, epochs, waits: sweep.waits.length ? waits : noWaits, accuracy, loss });
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'architecture.md'), archMd);
  fs.writeFileSync(path.join(o.out, 'profiling.md'), profMd);
  const profiling = path.join(o.out, 'profiling.pdf');
  await renderPdf(archMd, architecture, `${o.model}: architecture`, chromium.path);
  await renderPdf(profMd, profiling, `MNIST line profile: ${sweep.workers.join(' vs ')} workers`, chromium.path);
  o.log(`Rendered in ${((performance.now() - t0) / 1000).toFixed(1)} s:\n  ${architecture}\n  ${profiling}`);
  return { architecture, profiling };
}
