#!/usr/bin/env bash
# Quick end-to-end demo on CPU, no downloads: writes a tiny colour dataset in CoOp's OxfordPets layout,
# then runs zero-shot CLIP (random-weight `tiny` backbone) through train.py exactly as a user would.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
export DASSL_ENV_INFO=${DASSL_ENV_INFO:-short}
DATA=${DATA_DEMO:-output/demo/data}
OUT=output/demo/zsclip
$PY -c "from datasets.toy import write_coop_tree; write_coop_tree('$DATA')"
echo "== Demo data written to $DATA (CoOp OxfordPets layout)"
$PY train.py --root "$DATA" --seed 1 --trainer ZeroshotCLIP \
    --dataset-config-file configs/datasets/oxford_pets.yaml \
    --output-dir "$OUT" --eval-only \
    MODEL.BACKBONE.NAME tiny DATALOADER.NUM_WORKERS 0
echo "== Done. Log: $OUT/log.txt"
