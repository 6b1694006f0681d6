#!/usr/bin/env node
/**
 * `npm run bench`: training and inference samples/s on synthetic data after a warm-up,
 * and a per-kernel time breakdown of one training step. `--json` ends with one JSON line.
 */
import os from 'node:os';
import { Command, Option } from 'commander';
import { BACKEND_REQUESTS, BackendRequest, initBackend } from '../lib/backend';
import { benchModel, formatKernels } from '../lib/bench';
import { positiveInt } from '../lib/cli';
import { runMain } from '../lib/errors';
import { MODEL_NAMES } from '../lib/models';

runMain(async () => {
  const program = new Command('bench')
    .description('Benchmark a training step and inference on synthetic data (no data set needed).')
    .addOption(new Option('--model <name>', 'model').choices(MODEL_NAMES).default('net'))
    .option('--batch-size <n>', 'batch size', positiveInt, 64)
    .option('--steps <n>', 'timed steps (median reported) after 3 warm-up steps', positiveInt, 10)
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_REQUESTS).default('auto'))
    .option('--json', 'print one JSON object as the last line', false)
    .parse();
  const o = program.opts();
  const backend = await initBackend(o.backend as BackendRequest);
  const log = (s: string) => process.stdout.write(`${s}\n`);
  log(backend.line);
  log(`CPU: ${os.cpus()[0]?.model ?? 'unknown'} x ${os.availableParallelism()}`);
  const r = await benchModel(o.model, o.batchSize, 3, o.steps);
  log(`Training: ${r.train_samples_per_s.toFixed(1)} samples/s (${r.train_step_ms.toFixed(1)} ms per step of ${o.batchSize}, median of ${o.steps})`);
  log(`Inference: ${r.infer_samples_per_s.toFixed(1)} samples/s (${r.infer_step_ms.toFixed(1)} ms per batch of ${o.batchSize})`);
  log('\nKernels of one training step (tf.profile):');
  log(formatKernels(r.kernels));
  if (o.json) {
    log(JSON.stringify({
      backend: backend.name, engine: backend.engine, model: o.model, batch_size: o.batchSize,
      train_samples_per_s: r.train_samples_per_s, infer_samples_per_s: r.infer_samples_per_s,
      train_step_ms: r.train_step_ms, infer_step_ms: r.infer_step_ms, cpus: os.availableParallelism(),
      kernels_ms: Object.fromEntries(r.kernels.map((k) => [k.kernel, Number(k.ms.toFixed(2))])),
    }));
  }
});
