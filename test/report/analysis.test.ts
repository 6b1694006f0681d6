import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SweepData } from '../../lib/runs/sweep';
import { analyse } from '../../report/analysis';

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
function sweep(perWorkers: Record<number, { epoch: number; header: number; backward: number; forward: number; step: number }>, cpus: number): SweepData {
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
    dir: '/tmp/x', workers: Object.keys(perWorkers).map(Number), epochs, lines, waits: [], texts: {},
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
    assert.match(text, /compete with the training step for the same 2 CPU cores/);
    assert.doesNotMatch(text, /are faster|fit in the|prepare batches ahead/);
    assert.match(text, /still small: the step would remain the bottleneck/);
  });

  it('says when the difference is within noise', () => {
    const a = analyse(sweep({ 1: { epoch: 50, header: 1, backward: 30, forward: 12, step: 6 }, 8: { epoch: 50.5, header: 1.02, backward: 30, forward: 12, step: 6 } }, 8));
    assert.match(a.sentences.join('\n'), /barely changed.*\n.*already ready[\s\S]*no faster: a speedup of 0\.99×, within noise/);
  });
});
