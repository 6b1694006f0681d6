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
import { projectRoot, runsRoot } from '../lib/util/paths';
import crypto from 'node:crypto';
import { autoBackendName } from '../lib/engine/backend';
import { linesByWorkers, Provenance, provenanceOf, readSweep, runFolder, runSweep, sweepComplete, SweepData } from '../lib/runs/sweep';
import { studyComputeThreads } from '../lib/training/thread-choice';
import { DEFAULTS } from '../lib/training/options';
import { fingerprintOf } from '../lib/data/dataset';
import { machineInfo } from '../lib/util/machine';
import { analyse, loaderTable, LoaderRow } from './analysis';
import { curveFigure, epochTimeFigure, lineTimeFigure, timelineFigure, waitFigure } from './charts';
import { renderSvgs } from '../lib/browser/plotly-svg';
import { findChromium } from '../lib/browser/chromium';
import { diagramSvg, modelFacts } from './model-facts';
import { removeTemporaries } from '../lib/browser/folders';
import { renderPdf } from './render';
import { writeFileAtomic } from '../lib/util/files';
import { escapeHtml } from '../lib/util/html';

export interface ReportOptions {
  model: string;
  /** Whether --model was asked for (with --results the sweep's own model is documented otherwise). */
  modelGiven?: boolean;
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

const recorded = (v: unknown, show = (x: unknown) => String(x)) => (v === null || v === undefined || v === '' ? 'not recorded' : show(v));

/** One run's provenance in a sentence: host, CPU, CPUs, Slurm job, memory, versions, backend, threads, when. */
export function measuredWhere(p: Provenance): string {
  const slurm = p.slurm_job_id ? `, Slurm job ${p.slurm_job_id} (${recorded(p.slurm_cpus_per_task)} CPUs per task)` : '';
  return `host ${recorded(p.host)}: ${recorded(p.cpu_model)}, ${recorded(p.cpus)} CPUs available${slurm}, ${recorded(p.memory_gb)} GB; ` +
    `Node ${recorded(p.node)}, TensorFlow.js ${recorded(p.tfjs)}; ${recorded(p.engine)}, ${recorded(p.compute_threads)} compute ` +
    `thread${p.compute_threads === 1 ? '' : 's'}; from ${recorded(p.started_at)} to ${recorded(p.finished_at)}`;
}

export function profilingMarkdown(d: SweepData, charts: Record<string, string>): string {
  const a = analyse(d);
  const [lowW, highW] = [a.low.workers, a.high.workers];
  // Where and when each worker count was measured, from each run's own record.
  const env: (string | number)[][] = d.provenance.map((p) => [`Measured with ${p.workers} worker${p.workers === 1 ? '' : 's'}`, measuredWhere(p)]);
  if (d.differences.length) env.push(['Not like for like', d.differences.join('; ')]);
  env.push(
    ['Backend', d.config.backendLine ?? `${d.config.backend}: ${d.config.engine}`],
    ['Data', `${d.config.data}: ${fmt(d.config.train)} training and ${fmt(d.config.test)} test images. ${d.config.note}`],
    ['Training', `${d.config.model}, ${d.config.epochs} epochs, batch ${d.config.batchSize}, workers ${d.workers.join(' and ')}, ` +
      (a.low.computeThreads === a.high.computeThreads ? `${a.low.computeThreads} compute thread${a.low.computeThreads === 1 ? '' : 's'}`
        : `${a.low.computeThreads} and ${a.high.computeThreads} compute threads`)],
  );

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
  const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'not recorded');
  const loaderTables = d.workers.filter((w) => d.workerLines.some((l) => l.workers === w)).map((w) => {
    const { rows, total } = loaderTable(d, w);
    const cells = (r: LoaderRow, bold = false) => [bold ? `**${r.thread}**` : r.thread, fmt(r.batches), r.build_s.toFixed(3), r.handover_s.toFixed(3),
      r.total_s.toFixed(3), r.per_batch_ms.toFixed(2), pct(r.idle_share)];
    return `**${w} worker${w === 1 ? '' : 's'}**\n\n` + mdTable(['Thread', 'Batches', 'Build s', 'Hand-over s', 'Total s', 'ms per batch', 'Idle'],
      [...rows.map((r) => cells(r)), cells(total, true)], [false, true, true, true, true, true, true]);
  });
  const threadRows = d.threads.map((t) => [String(t.workers), t.thread, pct(t.busy_share), pct(t.waiting_share), t.batches_built ? fmt(t.batches_built) : '',
    t.batches_built ? t.mean_build_ms.toFixed(2) : '', t.asks ? `${t.mean_queue_ready.toFixed(2)} (${pct(t.wanted_ready_share)})` : '']);

  return fill(template('profiling.md'), {
    title: `Line profile of MNIST training: ${lowW} vs ${highW} data-loader workers`,
    intro: `The training loop (${files.join(', ')}) was line-profiled while training ${d.config.model} for ` +
      `${d.config.epochs} epochs with ${d.workers.map((w) => `${w}`).join(' and ')} DataLoader workers, each in a fresh process with the same seed. ` +
      `Epoch time: ${a.low.epochSeconds.toFixed(1)} s vs ${a.high.epochSeconds.toFixed(1)} s; final test accuracy ` +
      `${a.low.finalAccuracy.toFixed(2)}% vs ${a.high.finalAccuracy.toFixed(2)}%.`,
    // Paths, host names and notes are the user's text: escaped, never read as HTML.
    environment_table: mdTable(['What', 'Value'], env.map((row) => row.map(escapeHtml))),
    analysis: a.sentences.map((s) => `- ${escapeHtml(s)}`).join('\n'),
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
    chart_timeline: charts.timeline ?? '<p class="small">No timelines in these results: they were recorded by an older version (rerun the sweep with --fresh).</p>',
    loader_tables: loaderTables.length ? loaderTables.join('\n\n') : 'Not recorded in these results (an older version; rerun the sweep with --fresh).',
    thread_table: threadRows.length ? mdTable(['Workers', 'Thread', 'Busy', 'Waiting', 'Batches', 'Build ms', 'Queue (wanted ready)'], threadRows,
      [true, false, true, true, true, true, true]) : 'Not recorded in these results.',
    profiles: d.workers.map((w) => `### ${w} worker${w === 1 ? '' : 's'}\n\n\`\`\`text\n${d.texts[w].trimEnd()}\n\`\`\``).join('\n\n'),
    results_dir: escapeHtml(path.relative(projectRoot(), d.dir) || d.dir),
    date: today(),
  });
}

/**
 * What shapes a sweep's timings for this request on this machine: the study (data, model,
 * epochs, workers, limit, batch size) and the conditions (host, CPU, the CPUs this process
 * may use, the Slurm job, the backend `auto` picks and its compute threads). Its hash names
 * the sweep's folder, and a cached sweep's runs must have been measured under these conditions.
 */
export async function sweepRequest(o: Pick<ReportOptions, 'data' | 'model' | 'epochs' | 'workers' | 'limit'>): Promise<{ key: string; expect: Partial<Provenance> }> {
  const m = machineInfo();
  const backend = await autoBackendName();
  const expect: Partial<Provenance> = {
    host: m.hostname, cpu_model: m.cpu_model, cpus: m.cpus, slurm_job_id: m.slurm_job_id, slurm_cpus_per_task: m.slurm_cpus_per_task,
    backend, compute_threads: studyComputeThreads(backend, process.env, o.model, o.workers).threads, batch_size: DEFAULTS.batchSize,
  };
  const data = o.data === 'embedded' ? 'embedded' : path.resolve(o.data);
  // The data by its content too: a folder whose files changed is measured anew.
  const study = { data, content: fingerprintOf({ data: o.data, download: false }) ?? null, model: o.model, epochs: o.epochs, workers: o.workers, limit: o.limit ?? null };
  const hash = crypto.createHash('sha256').update(JSON.stringify({ study, expect })).digest('hex').slice(0, 10);
  const readable = [path.basename(data), o.model, `e${o.epochs}`, `w${o.workers.join('-')}`, ...(o.limit ? [`n${o.limit}`] : [])].join('_');
  return { key: `${readable}_${hash}`, expect };
}

/** Where and when a sweep was measured, in a line for the log. */
function measuredLine(provenance: Provenance[]): string {
  const hosts = [...new Set(provenance.map((p) => `${p.host ?? 'an unrecorded host'} (${p.cpu_model ?? '?'}, ${p.cpus ?? '?'} CPUs` +
    `${p.slurm_job_id ? `, Slurm job ${p.slurm_job_id}` : ''}, ${p.backend ?? '?'}, ${p.compute_threads ?? '?'} compute threads)`))];
  const starts = provenance.map((p) => p.started_at).filter(Boolean).sort();
  const ends = provenance.map((p) => p.finished_at).filter(Boolean).sort();
  return `measured on ${hosts.join(' and ')} from ${starts[0] ?? 'an unrecorded time'} to ${ends.at(-1) ?? 'an unrecorded time'}`;
}

/**
 * The sweep folder for a request: a complete sweep measured under the same conditions is
 * reused (the log says where and when it was measured); anything else is measured anew in
 * the request's own folder. Inside a Slurm job the job is one of the conditions, so a job
 * always measures its own sweep unless given --results.
 */
export async function ensureResults(o: ReportOptions): Promise<string> {
  if (o.results) {
    if (!fs.existsSync(o.results)) throw new UserError(`--results ${o.results}: no such folder`);
    return path.resolve(o.results);
  }
  const request = await sweepRequest(o);
  const dir = path.join(runsRoot(), 'report', request.key);
  let fresh = o.fresh;
  if (!fresh && sweepComplete(dir, o.workers, o.epochs)) {
    const provenance = o.workers.map((w) => provenanceOf(runFolder(dir, w), w));
    const unlike = provenance.flatMap((p) => Object.entries(request.expect)
      .filter(([k, v]) => p[k as keyof Provenance] !== v).map(([k, v]) => `${k} ${p[k as keyof Provenance] ?? 'not recorded'} (${p.workers} workers), here ${v}`));
    if (!unlike.length) {
      o.log(`Reusing the sweep in ${dir}, ${measuredLine(provenance)} (--fresh measures again)`);
      return dir;
    }
    o.log(`The sweep in ${dir} was measured under other conditions (${unlike.join('; ')}): measuring again`);
    fresh = true;
  }
  o.log(`Running the ${o.workers.join('-vs-')}-worker sweep (${o.epochs} epochs on ${o.data}) into ${dir}`);
  const trainArgs = ['--epochs', String(o.epochs), '--model', o.model, '--data', o.data, ...(o.limit ? ['--limit', String(o.limit)] : [])];
  await runSweep({ workers: o.workers, out: dir, trainArgs, log: o.log, fresh, resumeHint: o.fresh ? 'run the same command without --fresh' : 'run the same command again' });
  return dir;
}

export async function buildReports(o: ReportOptions): Promise<{ architecture: string; profiling: string }> {
  if (!MODELS[o.model]) throw new UserError(`unknown model '${o.model}'`);
  // A --results sweep is read (and its faults named) before a browser is looked for.
  const given = o.results ? readSweep(await ensureResults(o)) : undefined;
  // Both PDFs describe one model: the sweep's.
  if (given && o.modelGiven && given.config.model !== o.model) {
    throw new UserError(`--model ${o.model}, but the sweep in ${o.results} trained ${given.config.model}: both PDFs must describe one model; ` +
      `use --model ${given.config.model} (or leave --model out), or a sweep of ${o.model}`);
  }
  const chromium = await findChromium();
  o.log(`Chromium: ${chromium.path} (${chromium.source})`);
  const resultsDir = given?.dir ?? await ensureResults(o);
  const t0 = performance.now();
  const sweep = given ?? readSweep(resultsDir);
  const model = o.results ? sweep.config.model : o.model;
  if (!MODELS[model]) throw new UserError(`${resultsDir}: its runs trained '${model}', a model this version does not know`);
  await initBackend('cpu'); // building a model for its facts needs no speed
  const architecture = path.join(o.out, 'architecture.pdf');
  const archMd = architectureMarkdown(model);
  const a = analyse(sweep);
  const profiling = path.join(o.out, 'profiling.pdf');
  // Ctrl-C while rendering (the charts or the PDFs): no temporary file is left, and each PDF stays as it was or is whole.
  const stop = (signal: NodeJS.Signals) => {
    removeTemporaries();
    process.stderr.write(`\nStopped by ${signal} while rendering: ${o.out} keeps the PDFs it had; run the same command again to render ` +
      `(the sweep in ${resultsDir} is kept and reused)\n`);
    process.exit(130);
  };
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
  for (const sig of signals) process.on(sig, stop);
  try {
    const timelineFig = timelineFigure(sweep);
    const [lines, epochs, waits, accuracy, loss, timeline] = await renderSvgs([
      lineTimeFigure(sweep), epochTimeFigure(sweep), waitFigure(sweep, a.headerLine),
      curveFigure(sweep, 'test_accuracy', 'Test accuracy per epoch', '%'), curveFigure(sweep, 'train_loss', 'Training loss per epoch', 'NLL'),
      ...(timelineFig ? [timelineFig] : []),
    ], chromium);
    const noWaits = '<p class="small">No per-step waiting times in these results: they were recorded by an older version (rerun the sweep with --fresh).</p>';
    const profMd = profilingMarkdown(sweep, { lines, epochs, waits: sweep.waits.length ? waits : noWaits, accuracy, loss, ...(timeline ? { timeline } : {}) });
    o.log(`Rendering ${architecture} and ${profiling}`);
    await renderPdf(archMd, architecture, `${model}: architecture`, chromium);
    writeFileAtomic(path.join(o.out, 'architecture.md'), archMd); // after its PDF: never a source newer than the PDF it made
    await renderPdf(profMd, profiling, `MNIST line profile: ${sweep.workers.join(' vs ')} workers`, chromium);
    writeFileAtomic(path.join(o.out, 'profiling.md'), profMd);
  } finally {
    for (const sig of signals) process.off(sig, stop);
  }
  o.log(`Rendered in ${((performance.now() - t0) / 1000).toFixed(1)} s:\n  ${architecture}\n  ${profiling}`);
  return { architecture, profiling };
}
