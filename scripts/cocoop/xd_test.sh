#!/usr/bin/env bash
# Evaluate the CoCoOp imagenet model of xd_train.sh on DATASET at epoch LOADEP (default MAX_EPOCH, 10, as upstream):
#   DATA=... bash scripts/cocoop/xd_test.sh DATASET SEED [KEY VALUE ...]
# -> output/evaluation/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_16shots/DATASET/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoCoOp CFG=vit_b16_c4_ep10_batch1_ctxv1
parse_args "DATASET SEED" "$@"
xd_test
