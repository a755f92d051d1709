#!/usr/bin/env bash
# PromptSRC cross-dataset / DG source training (all classes, 16 shots; DATASET normally imagenet):
#   DATA=... bash scripts/promptsrc/xd_train.sh DATASET SEED [KEY VALUE ...]
# -> output/DATASET/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets_16shots/seed${SEED} (upstream names a missing ep5 config)
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptSRC CFG=vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets
parse_args "DATASET SEED" "$@"
xd_train
