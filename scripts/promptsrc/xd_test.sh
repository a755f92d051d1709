#!/usr/bin/env bash
# Evaluate the PromptSRC imagenet model of xd_train.sh on DATASET at epoch LOADEP (default MAX_EPOCH, 20):
#   DATA=... bash scripts/promptsrc/xd_test.sh DATASET SEED [KEY VALUE ...]
# -> output/evaluation/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets_16shots/DATASET/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptSRC CFG=vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets
parse_args "DATASET SEED" "$@"
xd_test
