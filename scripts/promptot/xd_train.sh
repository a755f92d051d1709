#!/usr/bin/env bash
# Prompt-OT cross-dataset / DG source training (all classes, 16 shots), as upstream:
#   DATA=... bash scripts/promptot/xd_train.sh DATASET SEED DIV CFG [KEY VALUE ...]
# -> output${DIV}/DATASET/PromptOT/${CFG}_16shots/seed${SEED}; DATASET is normally imagenet and CFG e.g. the
# project config vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets.
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptOT
parse_args "DATASET SEED DIV CFG" "$@"
xd_train
