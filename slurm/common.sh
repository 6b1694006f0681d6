# Sourced by the sbatch scripts in this folder: environment, parameters and signal
# forwarding shared by every job. Parameters come from the environment (sbatch passes it):
#   EPOCHS  WORKERS  LIMIT  DATA  MODEL  BACKEND  RUN_DIR  RUNS_ROOT  EXTRA_ARGS
set -euo pipefail
# A warning signal that arrives before training has started must not kill the shell.
STOP_REQUESTED=""
trap 'STOP_REQUESTED=USR1' USR1
trap 'STOP_REQUESTED=TERM' TERM

# Slurm runs a copy of the script from its spool folder: work from where sbatch was called.
cd "${SLURM_SUBMIT_DIR:-$PWD}"
if [ ! -f package.json ] || ! grep -q '"name": "mnist-profiling-lab"' package.json; then
  echo "error: submit from the repository root (sbatch slurm/<script>), not from $(pwd)" >&2
  exit 2
fi

# Node from the cluster's module system when there is one; harmless where there is none.
if command -v module >/dev/null 2>&1; then
  module load "${NODE_MODULE:-nodejs}" >/dev/null 2>&1 || echo "note: 'module load ${NODE_MODULE:-nodejs}' failed; using $(command -v node || echo 'no node')"
fi
if ! command -v node >/dev/null 2>&1; then
  echo "error: node not found (load a Node.js 20+ module, or set NODE_MODULE)" >&2
  exit 2
fi
if [ ! -d node_modules ]; then
  echo "error: node_modules missing: run 'npm ci' in $(pwd) before submitting (compute nodes often have no network)" >&2
  exit 2
fi

EPOCHS="${EPOCHS:-5}"
DATA="${DATA:-embedded}"
MODEL="${MODEL:-net}"
BACKEND="${BACKEND:-auto}"
CPUS="${SLURM_CPUS_PER_TASK:-1}"
# The worker count follows the CPUs asked for (--cpus-per-task) unless WORKERS says otherwise.
WORKERS="${WORKERS:-$CPUS}"
EXTRA_ARGS="${EXTRA_ARGS:-}"
# The results folder names the job's configuration: a job with other settings (other CPUs,
# workers, model, data, limit, backend or extra options) gets a folder of its own and never
# resumes another's run; resubmitting the same settings finds its folder and resumes it.
# (EPOCHS is not part of it: raising it continues a finished run.)
config_key() {
  local key="${MODEL}-$(basename "$DATA")-w${WORKERS_LIST:-$WORKERS}-c${CPUS}-${BACKEND}"
  key="${key//,/_}"
  if [ -n "${LIMIT:-}" ]; then key+="-n${LIMIT}"; fi
  if [ -n "$EXTRA_ARGS" ]; then key+="-x$(printf '%s' "$EXTRA_ARGS" | cksum | cut -d' ' -f1)"; fi
  printf '%s' "$key"
}
RUN_DIR="${RUN_DIR:-${RUNS_ROOT:-runs/slurm}/${SLURM_JOB_NAME:-job}/$(config_key)}"
TRAIN_ARGS=(--epochs "$EPOCHS" --data "$DATA" --model "$MODEL" --backend "$BACKEND")
if [ -n "${LIMIT:-}" ]; then TRAIN_ARGS+=(--limit "$LIMIT"); fi
# shellcheck disable=SC2206
if [ -n "$EXTRA_ARGS" ]; then TRAIN_ARGS+=($EXTRA_ARGS); fi

echo "job ${SLURM_JOB_ID:-?} (${SLURM_JOB_NAME:-?}) on $(hostname) at $(date -Is)"
echo "parameters: EPOCHS=$EPOCHS WORKERS=$WORKERS LIMIT=${LIMIT:-all} DATA=$DATA MODEL=$MODEL BACKEND=$BACKEND"
echo "cpus-per-task: $CPUS, gpus: ${SLURM_GPUS_ON_NODE:-${CUDA_VISIBLE_DEVICES:-none}}, results: $RUN_DIR"
echo "node $(node --version)"
mkdir -p "$RUN_DIR"
# Build only when a source is newer than the compiled output (jobs of an array share dist/).
if [ ! -f dist/bin/train.js ] || [ -n "$(find lib bin report scripts -newer dist/bin/train.js -name '*.ts' | head -1)" ]; then
  npm run --silent build
fi

# Runs a command in the background and forwards Slurm's warning signal (sbatch
# --signal=B:USR1@N) and termination to it, so that training can stop cleanly.
run_forwarding_signals() {
  if [ -n "$STOP_REQUESTED" ]; then
    echo "received $STOP_REQUESTED before training started: not starting; resubmit to run"
    return 3
  fi
  "$@" &
  local child=$!
  trap 'echo "received USR1 (time limit near): asking training to stop"; kill -USR1 $child 2>/dev/null || true' USR1
  trap 'kill -TERM $child 2>/dev/null || true' TERM
  local status=0
  wait "$child" || status=$?
  # wait returns early when a trapped signal arrives: keep waiting for the child itself.
  while kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  return "$status"
}
