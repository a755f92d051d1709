#!/usr/bin/env bash
# CoCoOp cross-dataset / DG source training (all classes, 16 shots, the base-to-new config), as CoOp's
# scripts/cocoop/xd_train.sh, which fixes DATASET to imagenet:
#   DATA=... bash scripts/cocoop/xd_train.sh DATASET SEED [KEY VALUE ...]   (DATASET normally imagenet)
# -> output/DATASET/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1_16shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoCoOp CFG=vit_b16_c4_ep10_batch1_ctxv1
parse_args "DATASET SEED" "$@"
xd_train
