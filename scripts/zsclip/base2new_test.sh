#!/usr/bin/env bash
# Zero-shot CLIP (nothing trained) on the base and the new classes (SUBS, default "base new"), in the layout of
# the other methods' base-to-new evaluations, so extract_log.py tabulates it next to them:
#   DATA=/path/to/datasets bash scripts/zsclip/base2new_test.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/test_{base,new}/DATASET/shots_16/ZeroshotCLIP/vit_b16/seed${SEED}
# The prompt is the dataset's hand-written template (trainers/templates.py). SEED only selects the few-shot
# cache the data loader reads (the test split is the same for every seed).
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=ZeroshotCLIP CFG=vit_b16
parse_args "DATASET SEED" "$@"
b2n_zeroshot "base new"
