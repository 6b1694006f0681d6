import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SweepData } from '../../lib/runs/sweep';
import { analyse } from '../../report/analysis';
import type { ThreadSummary } from '../../lib/profiling/trace';

/** A run's per-thread summary: the main thread's queue, and `loaders` loader workers with a build time and idle share. */
function threadsOf(workers: number, o: { buildMs: number; idle: number; ready: number; wanted: number; loaders?: number }): SweepData['threads'] {
  const row = (thread: string, kind: ThreadSummary['kind'], r: Partial<ThreadSummary>): SweepData['threads'][number] => ({
    workers, thread, kind, window_s: 100, busy_s: 0, busy_share: 0, waiting_s: 0, waiting_share: 0, batches_built: 0, mean_build_ms: 0,
    mean_handover_ms: 0, mean_queue_ready: 0, wanted_ready_share: 0, asks: 0, steps: 250, ...r,
  });
  const loaders = o.loaders ?? workers;
  return [
    row('main', 'main', { mean_queue_ready: o.ready, wanted_ready_share: o.wanted, asks: 252 }),
    ...Array.from({ length: loaders }, (_, i) => row(`loader worker ${i + 1}`, 'loader', {
      batches_built: 252 / loaders, mean_build_ms: o.buildMs, mean_handover_ms: 0.1, waiting_share: o.idle, busy_share: 1 - o.idle,
    })),
  ];
}

// The epoch loop (its header waits for data; its step line holds the whole step) and the step's phase lines.
const LOOP = { file: 'lib/training/epoch.ts', function: 'trainEpoch' };
const STEP = { file: 'lib/training/step.ts', function: 'trainStep' };
const LINES = [
  { ...LOOP, line: 46, contents: 'for await (const batch of loader) {', tag: 'data' },
  { ...LOOP, line: 48, contents: 'const loss = await trainStep(target, part);', tag: 'step' },
  { ...STEP, line: 40, contents: 'const { value, grads: partGrads } = tf.variableGrads(() => {', tag: 'backward' },
  { ...STEP, line: 41, contents: 'const output = s.model.apply(data, { training: true }) as tf.Tensor;', tag: 'forward' },
  { ...STEP, line: 45, contents: 's.optimizer.applyGradients(grads);', tag: 'optimizer' },
];

/** Two epochs per worker count with the given per-epoch seconds of header / backward / forward / step. */
function sweep(perWorkers: Record<number, { epoch: number; header: number; backward: number; forward: number; step: number }>, cpus: number,
  threads: SweepData['threads'] = []): SweepData {
  const epochs: SweepData['epochs'] = [];
  const lines: SweepData['lines'] = [];
  for (const [w, t] of Object.entries(perWorkers)) {
    for (const epoch of [1, 2]) {
      epochs.push({ workers: Number(w), epoch, train_seconds: t.epoch, test_accuracy: 98.5, train_loss: 0.1, test_loss: 0.05, samples_per_second: 8000 / t.epoch });
      const times = [t.header, t.backward + t.forward + t.step, t.backward, t.forward, t.step];
      LINES.forEach((l, i) => lines.push({ ...l, workers: Number(w), epoch, hits: i === 0 ? 126 : 125, time_s: times[i] }));
    }
  }
  return {
    dir: '/tmp/x', workers: Object.keys(perWorkers).map(Number), epochs, lines, workerLines: [], threads, timelines: {}, waits: [], texts: {},
    provenance: Object.keys(perWorkers).map((w) => ({
      workers: Number(w), host: 'h', cpu_model: 'Test CPU', cpus, memory_gb: 64, node: 'v20', tfjs: '4.22.0', slurm_job_id: '', slurm_cpus_per_task: '',
      backend: 'wasm', engine: 'wasm', compute_threads: 1, batch_size: 64, started_at: '2026-11-25T10:00:00Z', finished_at: '2026-11-25T10:05:00Z',
    })),
    differences: [],
    config: { backend: 'wasm', engine: 'wasm', data: 'embedded', note: '', train: 8000, test: 2000, epochs: 2, batchSize: 64, model: 'net' },
  };
}

describe('profiling analysis is computed from the numbers', () => {
  it('a machine where 8 workers help: waiting falls, epochs get faster, workers fit the cores', () => {
    const a = analyse(sweep({ 1: { epoch: 100, header: 30, backward: 40, forward: 20, step: 9 }, 8: { epoch: 72, header: 2, backward: 40, forward: 20, step: 9 } }, 16));
    const text = a.sentences.join('\n');
    assert.ok(Math.abs(a.speedup - 100 / 72) < 1e-9);
    assert.match(text, /loop header's time per step fell, from 240\.00 ms with 1 worker to 16\.00 ms with 8 \(-224\.00 ms, -93\.3%\)/);
    assert.match(text, /8 workers are faster: a speedup of 1\.39×, a parallel efficiency of 17\.4% for 8× the workers/);
    assert.match(text, /8 workers fit in the 16 CPU cores/);
    assert.match(text, /With 8 loader workers that is 9 threads on 16 CPU cores, each with a core of its own\./, 'how the cores were shared');
    assert.match(text, /More workers prepare batches ahead/);
    assert.doesNotMatch(text, /slower|did not bring batches sooner|more than the/);
    assert.match(text, /busiest single line is 40 of `trainStep`/);
    assert.match(text, /Inside the step \(1 worker\): forward 29\.0%, backward 58\.0%, optimizer 13\.0% of its phases' time/);
    assert.match(text, /training step takes 69\.7% of `trainEpoch` and waiting for the next batch \(line 46\) 30\.3%/);
  });

  it('a machine where 8 workers hurt: waiting rises, epochs get slower, more workers than cores', () => {
    const a = analyse(sweep({ 1: { epoch: 40, header: 0.1, backward: 25, forward: 10, step: 4 }, 8: { epoch: 44, header: 0.5, backward: 27, forward: 11, step: 5 } }, 2));
    const text = a.sentences.join('\n');
    assert.match(text, /time per step rose, from 0\.80 ms with 1 worker to 4\.00 ms with 8/);
    assert.match(text, /8 workers are slower: a speedup of 0\.91× \(a slowdown\)/);
    assert.match(text, /8 workers are more than the 2 CPU cores available/);
    assert.match(text, /With 8 loader workers that is 9 threads on 2 CPU cores: 7 more than the cores, so threads took turns\./);
    assert.match(text, /compete with the training step for the same 2 CPU cores/);
    assert.doesNotMatch(text, /are faster|fit in the|prepare batches ahead/);
    assert.match(text, /still small: the step would remain the bottleneck/);
  });

  it('on a GPU: says whether the GPU waited for data, from the waits for batches and for the loss read-back', () => {
    const data = sweep({ 1: { epoch: 60, header: 30, backward: 5, forward: 3, step: 2 }, 8: { epoch: 40, header: 2, backward: 5, forward: 3, step: 2 } }, 2);
    data.config.backend = 'webgpu';
    // The read-back line: 5 s an epoch with 1 worker (the GPU mostly done when the loss is read), 20 s with 8.
    for (const [w, seconds] of [[1, 5], [8, 20]]) {
      for (const epoch of [1, 2]) data.lines.push({ ...LOOP, line: 51, contents: 'const known = await readback.push(loss, batch.index);', tag: 'readback', workers: w, epoch, hits: 125, time_s: seconds });
    }
    const text = analyse(data).sentences.join('\n');
    assert.match(text, /Did the GPU wait for data\? Per step, the loop waited 240\.00 ms for the next batch and 40\.00 ms for the GPU \(reading the loss back\) with 1 worker: the loop waited longer for data than for the GPU, so the GPU waited for data; with 8, 16\.00 ms and 160\.00 ms: the loop waited longer for the GPU than for data, so the GPU set the pace\./);
    assert.match(text, /reading the loss back takes/);
    assert.match(text, /the thread that drives the GPU needs/);
    assert.doesNotMatch(text, /on the CPU backend/);
  });

  it('says how the compute threads shared each step: data parallel or split operations', () => {
    const data = sweep({ 1: { epoch: 40, header: 0.1, backward: 25, forward: 10, step: 4 }, 8: { epoch: 40, header: 0.5, backward: 25, forward: 10, step: 4 } }, 16);
    for (const e of data.epochs) e.compute_threads = 2;
    assert.match(analyse(data).sentences.join('\n'), /Both runs computed each step on 2 compute threads \(data parallel: each took a part of every batch\)/);
    data.config.computeSplit = 'ops';
    const text = analyse(data).sentences.join('\n');
    assert.match(text, /Both runs computed each step on 2 compute threads \(split operations: each convolution and matrix product was split across them\)/);
    assert.doesNotMatch(text, /data parallel/);
  });

  it('says when the difference is within noise', () => {
    const a = analyse(sweep({ 1: { epoch: 50, header: 1, backward: 30, forward: 12, step: 6 }, 8: { epoch: 50.5, header: 1.02, backward: 30, forward: 12, step: 6 } }, 8));
    assert.match(a.sentences.join('\n'), /barely changed.*\n.*already ready[\s\S]*no faster: a speedup of 0\.99×, within noise/);
  });
});

describe('the loader side of the analysis quotes the measured timelines', () => {
  const times = { 1: { epoch: 100, header: 30, backward: 40, forward: 20, step: 9 }, 8: { epoch: 72, header: 2, backward: 40, forward: 20, step: 9 } };

  it('fast workers that sit idle with a full queue', () => {
    const a = analyse(sweep(times, 16, [
      ...threadsOf(1, { buildMs: 4.5, idle: 0.62, ready: 1.3, wanted: 0.8 }), ...threadsOf(8, { buildMs: 4.9, idle: 0.95, ready: 12.4, wanted: 0.99 })]));
    const text = a.sentences.join('\n');
    assert.match(text, /building a batch took 4\.50 ms in a worker with 1 worker and 4\.90 ms with 8 workers \(handing it over 0\.10 ms more\)/);
    assert.match(text, /idle 62\.0% of the training time with 1 worker and 95\.0% of the training time with 8 workers: most of the time their prefetch queue was full/);
    assert.match(text, /1\.3 batches were ready on average with 1 worker \(the one it wanted in 80\.0% of the asks\), and 12\.4 batches were ready on average with 8 workers \(the one it wanted in 99\.0%/);
    assert.match(text, /finds more of them ready when it asks \(12\.4 ready on average when it asked, measured\)/);
    assert.match(text, /With 8 workers the batch the loop wanted had been built before it asked in 99\.0% of the asks, yet the loop waited 16\.00 ms per step: that wait is the hand-over/);
    assert.doesNotMatch(text, /in flight|Building got|busy most of the time/);
    assert.equal(a.loaderHigh?.batchesPerEpoch, 126);
  });

  it('slow, busy workers that slow down as they multiply', () => {
    const a = analyse(sweep(times, 16, [
      ...threadsOf(1, { buildMs: 20, idle: 0.1, ready: 0.2, wanted: 0.1 }), ...threadsOf(8, { buildMs: 31, idle: 0.3, ready: 3.0, wanted: 0.5 })]));
    const text = a.sentences.join('\n');
    assert.match(text, /building a batch took 20\.00 ms in a worker with 1 worker and 31\.00 ms with 8 workers/);
    assert.match(text, /Building got 1\.6× slower with more workers/);
    assert.match(text, /idle 10\.0% .* and 30\.0% .*: they were busy most of the time/);
    assert.match(text, /0\.2 batches were ready on average with 1 worker \(the one it wanted in 10\.0% of the asks\)/);
    assert.doesNotMatch(text, /prefetch queue was full|that wait is the hand-over/);
  });

  it('0 workers: the main thread builds the batches itself', () => {
    const t = { 0: times[1], 8: times[8] };
    const a = analyse(sweep(t, 16, [...threadsOf(0, { buildMs: 0, idle: 0, ready: 0, wanted: 0 }).map((r) => ({ ...r, batches_built: 252, mean_build_ms: 3.2 })),
      ...threadsOf(8, { buildMs: 4, idle: 0.9, ready: 14, wanted: 1 })]));
    const text = a.sentences.join('\n');
    assert.match(text, /building a batch took 3\.20 ms in the main thread with 0 workers and 4\.00 ms with 8 workers/);
    assert.match(text, /idle 90\.0% of the training time with 8 workers/);
    assert.doesNotMatch(text, /with 0 workers \(the one it wanted/);
  });

  it('runs recorded before timelines say so instead of guessing', () => {
    const text = analyse(sweep(times, 16)).sentences.join('\n');
    assert.match(text, /side \(build time, idle share, queue\) was not recorded in these runs/);
    assert.doesNotMatch(text, /in flight|measured on the threads' timelines/);
  });
});
