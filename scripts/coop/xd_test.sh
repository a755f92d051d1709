#!/usr/bin/env bash
# Evaluate the CoOp imagenet model of xd_train.sh on DATASET at epoch LOADEP (default MAX_EPOCH, 50):
#   DATA=... bash scripts/coop/xd_test.sh DATASET SEED [KEY VALUE ...]
# -> output/evaluation/CoOp/vit_b16_ep50_ctxv1_16shots/DATASET/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoOp CFG=vit_b16_ep50_ctxv1
parse_args "DATASET SEED" "$@"
xd_test
