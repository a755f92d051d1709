#!/usr/bin/env bash
# CoOp cross-dataset / DG source training as in CoCoOp's xd scripts (vit_b16_ep50_ctxv1, 16 shots):
#   DATA=... bash scripts/coop/xd_train.sh DATASET SEED [KEY VALUE ...]   (DATASET normally imagenet)
# -> output/DATASET/CoOp/vit_b16_ep50_ctxv1_16shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoOp CFG=vit_b16_ep50_ctxv1
parse_args "DATASET SEED" "$@"
xd_train
