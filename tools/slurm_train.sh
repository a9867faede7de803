#!/usr/bin/env bash
# Training on a Slurm cluster: one task per GPU, started with srun.
#
# Usage: tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py options]
# Env:   GPUS (4, tasks in all), GPUS_PER_NODE (4, tasks per node),
#        CPUS_PER_TASK (5), SRUN_ARGS (extra srun options), PYTHON (python),
#        GRES (gpu:$GPUS_PER_NODE; set it empty on CPU-only nodes).
set -euo pipefail
set -x

if [[ $# -lt 3 ]]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [train.py options]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
GPUS=${GPUS:-4}
GPUS_PER_NODE=${GPUS_PER_NODE:-4}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
GRES=${GRES-gpu:$GPUS_PER_NODE}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

# shellcheck disable=SC2086  # SRUN_ARGS holds several options
PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    ${GRES:+--gres="$GRES"} \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "$PYTHON" -u "$TOOLS_DIR/train.py" "$CONFIG" --launcher slurm "${@:4}"
