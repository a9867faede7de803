#!/usr/bin/env bash
# The main job of the README, on an embedded default:
#   1. set up ./.venv (tools/setup_env.sh)
#   2. generate a synthetic dataset in the ADE20K on-disk layout (data/synthetic_ade20k)
#   3. train a small Mask2Former on it with tools/train.py (work_dirs/demo)
#   4. evaluate the final checkpoint with tools/test.py: mIoU table + overlay
#      pictures of the predictions in work_dirs/demo/vis
# `bash tools/run_demo.sh panoptic` does the same for panoptic segmentation on
# synthetic data in the COCO panoptic layout (data/synthetic_coco,
# work_dirs/demo_panoptic) and prints PQ, mask/box AP and mIoU of one model.
# Idempotent: the dataset is generated once; a finished training is not
# repeated (an interrupted one resumes from its last checkpoint); the
# evaluation runs every time. Set DEMO_RETRAIN=1 to train again from scratch.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TASK=${1:-semantic}
case "$TASK" in
    semantic)
        DEFAULT_CONFIG=configs/mask2former/mask2former_r18-tiny_1xb4-3k_ade20k-synthetic-128x128.py
        DEFAULT_WORK_DIR=work_dirs/demo
        DATA_ROOT=data/synthetic_ade20k
        GENERATOR=tools/dataset_converters/synthetic_ade20k.py
        LAYOUT=ADE20K ;;
    panoptic)
        DEFAULT_CONFIG=configs/mask2former/mask2former_r18-tiny_1xb4-4k_coco-panoptic-synthetic-128x128.py
        DEFAULT_WORK_DIR=work_dirs/demo_panoptic
        DATA_ROOT=data/synthetic_coco
        GENERATOR=tools/dataset_converters/synthetic_coco.py
        LAYOUT="COCO panoptic" ;;
    *)
        echo "usage: bash tools/run_demo.sh [semantic|panoptic]" >&2
        exit 2 ;;
esac
CONFIG=${DEMO_CONFIG:-$DEFAULT_CONFIG}
WORK_DIR=${DEMO_WORK_DIR:-$DEFAULT_WORK_DIR}
export CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-}
PY=.venv/bin/python

bash tools/setup_env.sh

echo "[demo] step 1/3: synthetic $LAYOUT-format dataset in $DATA_ROOT"
$PY "$GENERATOR" "$DATA_ROOT"

MAX_ITERS=$($PY -c "from mmengine import Config; print(Config.fromfile('$CONFIG').train_cfg.max_iters)")
FINAL="$WORK_DIR/iter_${MAX_ITERS}.pth"
if [[ "${DEMO_RETRAIN:-0}" == 1 ]]; then
    rm -rf "$WORK_DIR"
fi
if [[ -f "$FINAL" ]]; then
    echo "[demo] step 2/3: $FINAL exists, training already done (DEMO_RETRAIN=1 to redo)"
else
    echo "[demo] step 2/3: training $CONFIG for $MAX_ITERS iterations (resumes if interrupted)"
    start=$(date +%s)
    $PY tools/train.py "$CONFIG" --work-dir "$WORK_DIR" --resume
    echo "[demo] training took $(( $(date +%s) - start )) s"
fi

echo "[demo] step 3/3: evaluating $FINAL on the validation split"
$PY tools/test.py "$CONFIG" "$FINAL" --work-dir "$WORK_DIR" --show-dir vis
echo "[demo] overlay pictures: $(find "$WORK_DIR" -path '*vis*' -name '*.png' | wc -l) files under $WORK_DIR/*/vis"
