#!/usr/bin/env bash
# Evaluate the MaPLe imagenet model of xd_train.sh on DATASET at epoch LOADEP (default MAX_EPOCH, 2, as upstream):
#   DATA=... bash scripts/maple/xd_test.sh DATASET SEED [KEY VALUE ...]
# -> output/evaluation/MaPLe/vit_b16_c2_ep5_batch4_2ctx_cross_datasets_16shots/DATASET/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=MaPLe CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets
parse_args "DATASET SEED" "$@"
xd_test
