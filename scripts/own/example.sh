#!/usr/bin/env bash
# Your own dataset end to end (README, "Your own dataset"), through the normal scripts:
#   1. check the data folder (python -m datasets.check);
#   2. zero-shot CLIP on the base and the new classes         (scripts/zsclip/base2new_test.sh);
#   3. Prompt-OT (lambda 10): train on the base classes, evaluate on base and new, per seed
#                                                             (scripts/promptot/base2new_{train,test}.sh);
#   4. the Base / New / HM table                              (extract_log.py).
# Usage:
#   DATA=/path/to/my_images bash scripts/own/example.sh [DATASET [KEY VALUE ...]]
# DATASET is a file name under configs/datasets/ without .yaml: imagefolder (default) or csvdataset, or your copy
# of one of them. Trailing KEY VALUE pairs go to every train.py run (e.g. MODEL.BACKBONE.NAME ViT-B/16).
# Environment: PY (python), OUT_OWN (output folder, default output/own), SEEDS (default "1 2 3"), LOADEP (the
# Prompt-OT checkpoint evaluated; default: the scripts' 31, the published protocol of its 40-epoch config).
# Finished runs are skipped and interrupted ones resumed (the scripts' rule).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${DATA:?set DATA to your data folder (one folder per class, or train/ val/ test/, or a data.csv)}"
PY=${PY:-python}
DATASET=${1:-imagefolder}
[ $# -gt 0 ] && shift
OUT=${OUT_OWN:-output/own}
SEEDS=${SEEDS:-1 2 3}
CFG=vit_b16_c2_ep20_batch4_4+4ctx-Copy3
export PY DATA OUTPUT=$OUT

echo "== [1/4] Check $DATA"
$PY -m datasets.check --root "$DATA" "$DATASET"

echo "== [2/4] Zero-shot CLIP on the base and new classes"
bash scripts/zsclip/base2new_test.sh "$DATASET" 1 "$@"

for SEED in $SEEDS; do
    echo "== [3/4] Prompt-OT, seed $SEED: train on the base classes, evaluate on base and new"
    bash scripts/promptot/base2new_train.sh "$DATASET" "$SEED" 10.0 "$CFG" "$@"
    bash scripts/promptot/base2new_test.sh "$DATASET" "$SEED" 10.0 "$CFG" "$@"
done

echo "== [4/4] Results"
$PY extract_log.py "$OUT" --output_path "$OUT/tables" --overwrite
