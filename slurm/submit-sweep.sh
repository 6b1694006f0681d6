#!/usr/bin/env bash
# Submits the sweep as a job array (one task per worker count) and a report job that
# runs only when every task succeeded (--dependency=afterok). Extra sbatch options apply
# to both, e.g.: WORKERS_LIST=1,8 EPOCHS=5 slurm/submit-sweep.sh --partition=gpu
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS_LIST="${WORKERS_LIST:-1,8}"
n=$(echo "$WORKERS_LIST" | tr ',' '\n' | wc -l)
largest=$(echo "$WORKERS_LIST" | tr ',' '\n' | sort -n | tail -1)
array=$(WORKERS_LIST="$WORKERS_LIST" SWEEP_ROOT="${SWEEP_ROOT:-runs/slurm}" sbatch --parsable --array=0-$((n - 1)) --cpus-per-task="${CPUS:-$largest}" \
  --export=ALL "$@" slurm/sweep-array.sbatch)
array_id="${array%%;*}"
sweep_dir="${SWEEP_ROOT:-runs/slurm}/mnist-sweep-array-${array_id}"
report=$(SWEEP_DIR="$sweep_dir" WORKERS_LIST="$WORKERS_LIST" sbatch --parsable --dependency=afterok:"$array_id" \
  --export=ALL "$@" slurm/report.sbatch)
echo "array job $array_id ($n tasks: workers $WORKERS_LIST), report job ${report%%;*} after it; results in $sweep_dir"
