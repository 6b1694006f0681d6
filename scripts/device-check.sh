#!/usr/bin/env bash
# The device check of the webgpu backend, for an accelerator machine, in one pass of a few
# minutes: the zoo trained on webgpu beside PyTorch CUDA on the same GPU (the Net and the
# exercise's net at batch 64, 256 and 1024, every model at 256), then a 1-vs-8-worker study of
# 2 epochs on webgpu. Writes one JSON file (default device-check.json) with the machine, each
# pair of figures and their ratio, and the study's epochs and line totals.
#
#   npm run build && bash scripts/device-check.sh [out.json]
#
# On a machine without npm, pack the project here with ../shared/tools/device-bundle.sh and run
# it there after `source .device/setup.sh`. PyTorch is the peer for measuring only: python3 (or
# $MNIST_LAB_PEER_PYTHON) must import torch with CUDA; without it the peer's entries say why.
# DEVICE_CHECK_RUNS ("model:batch ...") and DEVICE_CHECK_STUDY ("train options") change what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-device-check.json}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python=${MNIST_LAB_PEER_PYTHON:-python3}
runs=${DEVICE_CHECK_RUNS:-net:64 net:256 net:1024 pytorch-example:64 pytorch-example:256 pytorch-example:1024 fc:256 cnn-small:256 base-14k:256 bn-14k:256 gap-8k:256 gap-14k:256 bn-10k:256}
study=${DEVICE_CHECK_STUDY:---epochs 2 --limit 12800}
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

for run in $runs; do
  model=${run%%:*} batch=${run##*:}
  echo "== $model, batch $batch: webgpu, then PyTorch CUDA" >&2
  node dist/bin/bench.js --model "$model" --backend webgpu --batch-size "$batch" --skip-loader --steps 10 --json \
    > "$work/lab-$model-$batch.log" 2>&1 || true
  "$python" scripts/pytorch_peer.py "$model" --device cuda --batch-size "$batch" --steps 10 \
    > "$work/torch-$model-$batch.log" 2>&1 || true
done

echo "== the 1-vs-8-worker study on webgpu ($study)" >&2
# shellcheck disable=SC2086 # the study's options are words
node dist/bin/profile.js --workers 1,8 --backend webgpu $study --out "$work/study" --plain > "$work/study.log" 2>&1 || true

node - "$work" "$out" "$started" "$runs" "$study" <<'EOF'
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const [work, out, started, runs, study] = process.argv.slice(2);
const text = (f) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '');
// The last line of a log that is a JSON object, or what went wrong (the log's last lines).
const lastJson = (f) => {
  const lines = text(f).trim().split('\n');
  const json = [...lines].reverse().find((l) => l.startsWith('{'));
  return json ? JSON.parse(json) : { error: lines.slice(-3).join(' ') || 'no output' };
};
// The study as the report reads it: its epochs, and the analysis the report would print.
const studyResult = (() => {
  try {
    const data = require(path.resolve('dist/lib/runs/sweep')).readSweep(path.join(work, 'study'));
    const a = require(path.resolve('dist/report/analysis')).analyse(data);
    return { epochs: data.epochs, low: a.low, high: a.high, speedup: a.speedup, analysis: a.sentences };
  } catch (err) {
    return { error: String(err.message ?? err) };
  }
})();
let gpu = 'unknown';
try { gpu = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8' }).trim(); } catch { /* no NVIDIA tools */ }
const bench = runs.split(/\s+/).filter(Boolean).map((run) => {
  const [model, batch] = run.split(':');
  const lab = lastJson(path.join(work, `lab-${model}-${batch}.log`));
  const pytorch = lastJson(path.join(work, `torch-${model}-${batch}.log`));
  const ratio = lab.train_samples_per_s_1_thread && pytorch.train_samples_per_s ? lab.train_samples_per_s_1_thread / pytorch.train_samples_per_s : null;
  return { model, batch_size: Number(batch), lab, pytorch, ratio_to_pytorch: ratio };
});
const result = {
  what: 'device check of the webgpu backend (scripts/device-check.sh)',
  started, finished: new Date().toISOString(),
  machine: { host: os.hostname(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memory_gb: Math.round(os.totalmem() / 2 ** 30), gpu, node: process.version },
  bench,
  study: { options: study, ...studyResult, log_tail: text(path.join(work, 'study.log')).trim().split('\n').slice(-4) },
};
fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
console.error(`wrote ${out}`);
for (const b of bench) {
  console.error(`${b.model.padEnd(16)} batch ${String(b.batch_size).padStart(4)}: webgpu ${b.lab.train_samples_per_s_1_thread?.toFixed(0) ?? b.lab.error}` +
    `, PyTorch CUDA ${b.pytorch.train_samples_per_s?.toFixed(0) ?? b.pytorch.error}${b.ratio_to_pytorch ? `, ${b.ratio_to_pytorch.toFixed(3)}x` : ''}`);
}
EOF
