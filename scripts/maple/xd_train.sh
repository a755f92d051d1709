#!/usr/bin/env bash
# MaPLe cross-dataset / DG source training (all classes, 16 shots; DATASET normally imagenet), as upstream's
# scripts/maple/xd_train_maple.sh:  DATA=... bash scripts/maple/xd_train.sh DATASET SEED [KEY VALUE ...]
# -> output/DATASET/MaPLe/vit_b16_c2_ep5_batch4_2ctx_cross_datasets_16shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=MaPLe CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets
parse_args "DATASET SEED" "$@"
xd_train
