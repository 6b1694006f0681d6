#!/usr/bin/env node
/**
 * `npm run bench`: training and inference samples/s on synthetic data after a warm-up,
 * and a per-kernel time breakdown of one training step. `--json` ends with one JSON line.
 */
import os from 'node:os';
import { Option } from 'commander';
import { BACKEND_REQUESTS, BackendRequest, initBackend } from '../lib/engine/backend';
import { alternateRuns, benchLoader, benchModel, benchParallelTraining, benchProfileOverhead, benchTestPass, formatKernels, loaderResidentMB, median, setWarmupSeconds, warmupSeconds } from '../lib/bench';
import { limitTrain, loadEmbedded } from '../lib/data/dataset';
import { command, nonNegativeNumber, positiveInt } from '../lib/util/cli-options';
import { runMain, UserError } from '../lib/util/errors';
import { findPeerPython, PeerResult, runPeer } from '../lib/bench-peer';
import { createModel, MODEL_NAMES } from '../lib/models';
import { summarize } from '../lib/models/summary';
import { checkComputeThreads, defaultComputeThreads } from '../lib/training/data-parallel';
import { chooseComputeThreads, COMPUTE_SPLITS, type ComputeSplit, fastestLayout, recordThreadSweep, sweepQuestion, threadCounts, threadSweepsFile } from '../lib/training/thread-choice';
import { kernelThreadsAvailable } from '../lib/engine/wasm/simd-kernels';
import { cpuAllotment } from '../lib/util/machine';

runMain(async () => {
  const program = command('bench')
    .description('Benchmark a training step and inference on synthetic data (no data set needed).')
    .addOption(new Option('--model <name>', "model, or 'all' for every model of the zoo (training on 1 and N threads, inference, top kernels)")
      .choices([...MODEL_NAMES, 'all']).default('net'))
    .option('--batch-size <n>', 'batch size', positiveInt, 64)
    .option('--steps <n>', 'timed steps (median reported) after a warm-up of 3 steps and at least --warmup-seconds', positiveInt, 10)
    .option('--warmup-seconds <s>', 'the least warm-up time before timing (a fresh compute thread runs slower until V8 has optimised its WebAssembly)', nonNegativeNumber, 2)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_REQUESTS).default('auto'))
    .option('--compute-threads <n>', 'threads for the multi-thread training figure (default: as npm run train picks)', positiveInt)
    .addOption(new Option('--compute-split <how>', 'how those threads share a step: batch (data parallel) or ops (each operation split ' +
      'across them; wasm only) (default: as npm run train picks)').choices(COMPUTE_SPLITS))
    .option('--json', 'print one JSON object as the last line', false)
    .option('--skip-loader', 'skip the data-loader and profiler-overhead parts (model only)', false)
    .option('--peer', 'with --model all or --threads-sweep: train each model in PyTorch too (scripts/pytorch_peer.py, same threads and batch), ' +
      'right after ours, and give the ratio; needs a Python that imports torch (measuring only)', false)
    .option('--threads-sweep', 'training samples/s of the model (or all) at 1, 2, 4, ... compute threads up to the CPUs this process may use ' +
      '(with --peer, PyTorch on each count beside it); recorded for this machine: npm run train then defaults to the fastest count', false)
    .option('--sweep-rounds <n>', 'with --threads-sweep: times each cell is measured, the cells taken in turn each round; the median counts ' +
      '(a single run on a busy host can set a slow default)', positiveInt, 3)
    .parse();
  const o = program.opts();
  setWarmupSeconds(o.warmupSeconds as number);
  const backend = await initBackend(o.backend as BackendRequest);
  const log = (s: string) => process.stdout.write(`${s}\n`);
  log(backend.line);
  log(`CPU: ${os.cpus()[0]?.model ?? 'unknown'} x ${os.availableParallelism()}`);
  if (o.threadsSweep) {
    if (o.computeThreads) throw new UserError('--threads-sweep measures every thread count: leave --compute-threads out');
    await benchThreadSweep(o.model === 'all' ? MODEL_NAMES : [o.model], o.batchSize, o.steps, o.sweepRounds, backend.name, log, o.json, o.peer);
    return;
  }
  if (program.getOptionValueSource('sweepRounds') === 'cli') throw new UserError('--sweep-rounds goes with --threads-sweep');
  if (o.model === 'all') {
    // Every model on the same thread count (the machine's default), beside the default each model gets.
    const threads: number = o.computeThreads ?? defaultComputeThreads(backend.name);
    checkComputeThreads(threads, backend.name);
    await benchAllModels(o.batchSize, o.steps, threads, backend.name, log, o.json, o.peer);
    return;
  }
  if (o.peer) throw new UserError('--peer goes with --model all or --threads-sweep');
  const chosen = chooseComputeThreads(backend.name, process.env, o.model, o.batchSize, o.computeSplit as ComputeSplit | undefined);
  const threads: number = o.computeThreads ?? chosen.threads;
  const split: ComputeSplit = o.computeSplit ?? (o.computeThreads ? 'batch' : chosen.split);
  checkComputeThreads(threads, backend.name, split);
  const r = await benchModel(o.model, o.batchSize, 3, o.steps);
  log(`Training, 1 thread: ${r.train_samples_per_s.toFixed(1)} samples/s (${r.train_step_ms.toFixed(1)} ms per step of ${o.batchSize}, median of ${o.steps})`);
  let train = { train_samples_per_s: r.train_samples_per_s, train_step_ms: r.train_step_ms };
  if (threads > 1) {
    train = await benchParallelTraining(o.model, o.batchSize, threads, backend.name, 3, o.steps, split);
    const how = `${split === 'ops' ? 'split operations' : 'data parallel'}${o.computeThreads || o.computeSplit ? '' : ', as npm run train'}`;
    log(`Training, ${threads} threads (${how}): ${train.train_samples_per_s.toFixed(1)} samples/s ` +
      `(${train.train_step_ms.toFixed(1)} ms per step of ${o.batchSize}, median of ${o.steps}), ` +
      `${(train.train_samples_per_s / r.train_samples_per_s).toFixed(2)}× one thread`);
  }
  log(`Inference, 1 thread: ${r.infer_samples_per_s.toFixed(1)} samples/s (${r.infer_step_ms.toFixed(1)} ms per batch of ${o.batchSize})`);
  const testPass = await benchTestPass(o.model, loadEmbedded().test, threads, backend.name, 3, split);
  log(`Test pass (the embedded 2,000 test digits, batches of 1,000, median of 3): ${testPass.one_thread_s.toFixed(2)} s on 1 thread, ` +
    `${testPass.threads_s.toFixed(2)} s on ${threads}: ${testPass.speedup.toFixed(2)}×`);
  log('\nKernels of one training step, 1 thread (tf.profile):');
  log(formatKernels(r.kernels));
  if (r.dispatches_per_step !== undefined) log(`GPU dispatches of one training step (tfjs's kernels and the lab's own): ${r.dispatches_per_step}`);
  const extra: Record<string, unknown> = {};
  if (!o.skipLoader) {
    const data = loadEmbedded();
    log('\nData loader alone (embedded 8,000 training digits, batch 64, normalise only, persistent workers):');
    const perWorkers: Record<string, number> = {};
    for (const w of [0, 1, 2, 4, 8]) {
      perWorkers[String(w)] = await benchLoader(data.train, w, o.batchSize);
      log(`  ${String(w).padStart(2)} workers: ${perWorkers[String(w)].toFixed(0)} batches/s`);
    }
    const rss1 = await loaderResidentMB(data.train, 1);
    const rss8 = await loaderResidentMB(data.train, 8);
    const perWorkerMB = (rss8 - rss1) / 7;
    log(`  resident memory: ${rss1.toFixed(0)} MB with 1 worker, ${rss8.toFixed(0)} MB with 8 (${perWorkerMB.toFixed(1)} MB per added worker)`);
    const overhead = await benchProfileOverhead(limitTrain(data, 1280).train, { workers: 8, threads, split, backend: backend.name });
    log(`\nProfiling overhead on a training epoch, everything on (line profiler, timelines of every thread, 8 loader workers, ` +
      `${threads} compute thread${threads === 1 ? '' : 's'}; 1,280 samples, median of 3): ` +
      `${overhead.off_s.toFixed(2)} s off, ${overhead.on_s.toFixed(2)} s on: ${overhead.overhead_pct.toFixed(2)}% (${overhead.trace_events} trace events); ` +
      `of it, during the steps ${overhead.steps_overhead_pct.toFixed(2)}%, and ${overhead.gather_s.toFixed(3)} s after them gathering every thread's records`);
    Object.assign(extra, {
      loader_batches_per_s: perWorkers, loader_rss_mb_w1: rss1, loader_rss_mb_w8: rss8, loader_mb_per_worker: perWorkerMB,
      profile_overhead_pct: overhead.overhead_pct, profile_epoch_s_off: overhead.off_s, profile_epoch_s_on: overhead.on_s,
      profile_overhead_steps_pct: overhead.steps_overhead_pct, profile_gather_s: overhead.gather_s,
      profile_overhead_workers: overhead.workers, profile_overhead_compute_threads: overhead.compute_threads, profile_trace_events: overhead.trace_events,
    });
  }
  if (o.json) {
    log(JSON.stringify({ ...extra,
      backend: backend.name, engine: backend.engine, model: o.model, batch_size: o.batchSize, warmup_seconds: warmupSeconds(),
      compute_threads: threads, compute_split: split, train_samples_per_s: train.train_samples_per_s, train_step_ms: train.train_step_ms,
      train_samples_per_s_1_thread: r.train_samples_per_s, train_step_ms_1_thread: r.train_step_ms,
      infer_samples_per_s: r.infer_samples_per_s, infer_step_ms: r.infer_step_ms, cpus: os.availableParallelism(),
      test_pass_s_1_thread: testPass.one_thread_s, test_pass_s: testPass.threads_s, test_pass_speedup: testPass.speedup,
      kernels_ms: Object.fromEntries(r.kernels.map((k) => [k.kernel, Number(k.ms.toFixed(2))])),
      kernel_calls_per_step: kernelCalls(r.kernels), dispatches_per_step: r.dispatches_per_step ?? null,
    }));
  }
});

/** Runs of ours and of the PyTorch peer, alternating, per model with --peer. */
const PEER_ROUNDS = 3;

/**
 * Every model of the zoo: training samples/s on 1 and `threads` threads, inference, the top
 * kernels; with `peer`, PyTorch training the same model on the same threads right after
 * ours, and our ratio to it. A table, and per model in the JSON.
 */
async function benchAllModels(batchSize: number, steps: number, threads: number, backend: string, log: (s: string) => void, json: boolean,
  peer: boolean): Promise<void> {
  const rows: Record<string, { parameters: number; default_compute_threads: number; default_compute_split: ComputeSplit; train_samples_per_s_1_thread: number; train_samples_per_s: number;
    infer_samples_per_s: number; top_kernels_ms: Record<string, number>; kernel_calls_per_step: number; dispatches_per_step: number | null; pytorch_train_samples_per_s?: number; ratio_to_pytorch?: number;
    train_samples_per_s_default_rounds?: number[]; pytorch_train_samples_per_s_rounds?: number[] }> = {};
  const python = peer ? findPeerPython() : undefined;
  if (python && 'missing' in python) log(`PyTorch peer: not measured: ${python.missing}`);
  const peerPython = python && 'python' in python ? python.python : undefined;
  let peerInfo: Pick<PeerResult, 'torch' | 'blas' | 'threads'> & { python: string } | undefined;
  log(`\nEvery model, batch ${batchSize}, synthetic data, median of ${steps} steps after a warm-up (3 steps, at least ${warmupSeconds()} s); ${threads} compute threads as npm run train picks` +
    `${peerPython ? `; then ours at the default threads and PyTorch on ${threads} threads, alternately, ${PEER_ROUNDS} times each (medians)` : ''}:\n`);
  const peerHeader = peerPython ? `${'ours dflt'.padStart(10)}${'torch'.padStart(8)}${'ours/'.padStart(7)}` : '';
  const header = `${'model'.padEnd(16)}${'params'.padStart(10)}${'train 1 thr'.padStart(13)}${`train ${threads} thr`.padStart(13)}${'ratio'.padStart(7)}` +
    `${peerHeader}${'default'.padStart(8)}${'infer'.padStart(10)}  top kernels (ms, one step, 1 thread)`;
  log(header);
  log('='.repeat(header.length + 20));
  for (const name of MODEL_NAMES) {
    const model = createModel(name, 1);
    const parameters = model.countParams();
    const torchCount = summarize(model).totalParams; // batch norm's running statistics are buffers there
    model.dispose();
    const one = await benchModel(name, batchSize, 3, steps);
    const many = threads > 1 ? await benchParallelTraining(name, batchSize, threads, backend, 3, steps) : one;
    const top = one.kernels.slice(0, 3);
    const usualChoice = chooseComputeThreads(backend, process.env, name, batchSize);
    const usual = usualChoice.threads;
    rows[name] = { parameters, default_compute_threads: usual, default_compute_split: usualChoice.split, train_samples_per_s_1_thread: one.train_samples_per_s, train_samples_per_s: many.train_samples_per_s,
      infer_samples_per_s: one.infer_samples_per_s, top_kernels_ms: Object.fromEntries(one.kernels.slice(0, 5).map((k) => [k.kernel, Number(k.ms.toFixed(2))])),
      kernel_calls_per_step: kernelCalls(one.kernels), dispatches_per_step: one.dispatches_per_step ?? null };
    let peerColumns = '';
    if (peerPython) {
      // Ours at the threads npm run train picks for the model and PyTorch on all the threads, alternately,
      // PEER_ROUNDS times (the host is shared: one run of either can be 2x off); the medians are compared.
      let torch: PeerResult | undefined;
      const [oursRuns, torchRuns] = await alternateRuns(
        async () => (await benchParallelTraining(name, batchSize, usual, backend, 3, steps, usualChoice.split)).train_samples_per_s,
        async () => (torch = runPeer(peerPython, name, { threads, batchSize, steps })).train_samples_per_s,
        PEER_ROUNDS, false); // each run warms up itself
      if (torch!.parameters !== torchCount) throw new Error(`the PyTorch peer's ${name} has ${torch!.parameters} parameters, ours ${torchCount}: not the same model`);
      peerInfo = { python: peerPython, torch: torch!.torch, blas: torch!.blas, threads: torch!.threads };
      const ours = median(oursRuns);
      const theirs = median(torchRuns);
      Object.assign(rows[name], { train_samples_per_s_default_rounds: oursRuns, pytorch_train_samples_per_s_rounds: torchRuns,
        pytorch_train_samples_per_s: theirs, ratio_to_pytorch: ours / theirs });
      peerColumns = `${ours.toFixed(0).padStart(10)}${theirs.toFixed(0).padStart(8)}${(ours / theirs).toFixed(2).padStart(7)}`;
    }
    log(`${name.padEnd(16)}${parameters.toLocaleString('en-US').padStart(10)}${one.train_samples_per_s.toFixed(0).padStart(13)}` +
      `${many.train_samples_per_s.toFixed(0).padStart(13)}${(many.train_samples_per_s / one.train_samples_per_s).toFixed(2).padStart(7)}${peerColumns}` +
      `${`${usual}${usual > 1 && usualChoice.split === 'ops' ? ' ops' : ''}`.padStart(8)}${one.infer_samples_per_s.toFixed(0).padStart(10)}  ${top.map((k) => `${k.kernel} ${k.ms.toFixed(1)}`).join(', ')}`);
  }
  log('\n(samples/s; train N thr: data parallel; ratio: N threads over 1; default: the compute threads npm run train picks for the model here, \'ops\' where they split operations' +
    `${peerInfo ? `; ours dflt, torch, ours/: ours at the default threads, PyTorch ${peerInfo.torch} (${peerInfo.blas}, ${peerInfo.threads} threads, ` +
      `${peerInfo.python}) and their ratio, medians of ${PEER_ROUNDS} alternating runs` : ''})`);
  if (json) log(JSON.stringify({ backend, batch_size: batchSize, warmup_seconds: warmupSeconds(), compute_threads: threads, cpus: os.availableParallelism(), peer: peerInfo ?? null, models: rows }));
}

/**
 * Kernels one training step runs (tf.profile's count, op wrappers left out): on webgpu nearly each
 * is a GPU dispatch (Reshape and Identity are not), the figure a GPU engine lowers by fusing.
 */
function kernelCalls(kernels: { calls: number }[]): number {
  return kernels.reduce((n, k) => n + k.calls, 0);
}

/**
 * Training samples/s per compute-thread count for each model (PyTorch on the same count right
 * after ours with `peer`), and the count chosen from it; recorded for this machine, where the
 * default compute threads of npm run train come from (training/thread-choice.ts).
 */
async function benchThreadSweep(models: string[], batchSize: number, steps: number, rounds: number, backend: string, log: (s: string) => void, json: boolean,
  peer: boolean): Promise<void> {
  checkComputeThreads(2, backend); // a backend that computes on its own threads (or a GPU) has nothing to sweep
  const allotment = cpuAllotment();
  const counts = threadCounts(allotment.cpus);
  const python = peer ? findPeerPython() : undefined;
  if (python && 'missing' in python) log(`PyTorch peer: not measured: ${python.missing}`);
  const peerPython = python && 'python' in python ? python.python : undefined;
  const file = threadSweepsFile();
  const question = sweepQuestion(backend, batchSize);
  const measuredAt = new Date().toISOString();
  log(`\nThread sweep, batch ${batchSize}, synthetic data, median of ${steps} steps after a warm-up (3 steps, at least ${warmupSeconds()} s), ` +
    `each cell the median of ${rounds} run${rounds === 1 ? '' : 's'} (the cells in turn each round), ` +
    `compute threads ${counts.join(', ')} (${allotment.source})${peerPython ? '; PyTorch on the same threads right after ours (ours/torch)' : ''}:\n`);
  // Split operations need the wasm backend on a shared memory; the cpu backend has only replicas.
  const splits: ComputeSplit[] = kernelThreadsAvailable() ? ['batch', 'ops'] : ['batch'];
  const width = 9 * splits.length + (peerPython ? 7 : 0);
  const header = `${'model'.padEnd(16)}${counts.map((t) => `${t} thr`.padStart(width)).join('')}${'chosen'.padStart(12)}`;
  log(header);
  log('='.repeat(header.length));
  type Runs = Record<string, number[]>;
  const results: Record<string, { samples_per_s: Record<string, number>; ops_samples_per_s?: Record<string, number>;
    pytorch_samples_per_s?: Record<string, number>; chosen: number; chosen_split: ComputeSplit;
    runs: { samples_per_s: Runs; ops_samples_per_s?: Runs; pytorch_samples_per_s?: Runs } }> = {};
  let peerInfo: Pick<PeerResult, 'torch' | 'blas'> & { python: string } | undefined;
  const medians = (runs: Runs) => Object.fromEntries(Object.entries(runs).map(([t, v]) => [t, median(v)]));
  for (const name of models) {
    const runs: Record<ComputeSplit | 'torch', Runs> = { batch: {}, ops: {}, torch: {} };
    // Round by round over every cell, so that a busy minute on a shared host weighs on one run of
    // each cell rather than on all the runs of one.
    for (let round = 0; round < rounds; round++) {
      for (const t of counts) {
        for (const split of splits) {
          if (t === 1 && split === 'ops') continue; // one thread is one thread either way
          (runs[split][t] ??= []).push((await benchParallelTraining(name, batchSize, t, backend, 3, steps, split)).train_samples_per_s);
        }
        if (peerPython) {
          const r = runPeer(peerPython, name, { threads: t, batchSize, steps });
          peerInfo = { python: peerPython, torch: r.torch, blas: r.blas };
          (runs.torch[t] ??= []).push(r.train_samples_per_s);
        }
      }
    }
    const ours: Record<ComputeSplit, Record<string, number>> = { batch: medians(runs.batch), ops: medians(runs.ops) };
    const torch = medians(runs.torch);
    const cells = counts.map((t) => [...splits.map((split) => (ours[split][t] === undefined ? '-' : ours[split][t].toFixed(0))),
      ...(peerPython ? [torch[t].toFixed(0)] : [])].join(' / ').padStart(width));
    const opsMeasured = splits.includes('ops') && Object.keys(ours.ops).length > 0;
    const chosen = fastestLayout({ batch: ours.batch, ...(opsMeasured ? { ops: ours.ops } : {}) }, allotment.cpus) ?? { threads: 1, split: 'batch' as const };
    if (file) {
      recordThreadSweep(file, { ...question, model: name, measured_at: measuredAt, samples_per_s: ours.batch,
        ...(opsMeasured ? { ops_samples_per_s: ours.ops } : {}) });
    }
    results[name] = { samples_per_s: ours.batch, ...(opsMeasured ? { ops_samples_per_s: ours.ops } : {}),
      ...(peerPython ? { pytorch_samples_per_s: torch } : {}), chosen: chosen.threads, chosen_split: chosen.split,
      runs: { samples_per_s: runs.batch, ...(opsMeasured ? { ops_samples_per_s: runs.ops } : {}), ...(peerPython ? { pytorch_samples_per_s: runs.torch } : {}) } };
    const chosenCell = chosen.threads === 1 ? '1' : `${chosen.threads} ${chosen.split}`;
    log(`${name.padEnd(16)}${cells.join('')}${chosenCell.padStart(12)}`);
  }
  const cellWords = [...splits.map((sp) => (sp === 'batch' ? 'data parallel' : 'split operations')), ...(peerPython ? ['PyTorch'] : [])];
  log(`\n(training samples/s per cell: ${cellWords.join(' / ')}; chosen: the fewest threads within 3% of the fastest, and how they split the ` +
    `step, what npm run train now uses for the model here${peerInfo ? `; PyTorch ${peerInfo.torch} (${peerInfo.blas}, ${peerInfo.python})` : ''})`);
  log(file ? `Recorded in ${file} for ${question.machine}, ${backend}, batch ${batchSize}, ${question.software}.`
    : 'Not recorded: no home folder (set MNIST_LAB_CACHE to keep it).');
  if (json) {
    log(JSON.stringify({ backend, batch_size: batchSize, warmup_seconds: warmupSeconds(), steps, rounds, cpus: allotment.cpus, cpus_source: allotment.source,
      thread_counts: counts, measured_at: measuredAt, machine: question.machine, software: question.software, recorded_in: file ?? null,
      peer: peerInfo ?? null, threads_sweep: results }));
  }
}
