#!/usr/bin/env bash
# ALIGN cross-dataset / DG source training (all classes, 16 shots; DATASET normally imagenet) with the paper's
# values (no released config: 2 epochs, LR 0.0026):
#   DATA=... bash scripts/align/xd_train.sh DATASET SEED [CFG] [KEY VALUE ...]
# -> output/DATASET/ALIGN/vit_b16_c2_ep2_batch4_2ctx_cross_datasets_16shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=ALIGN CFG=vit_b16_c2_ep2_batch4_2ctx_cross_datasets
parse_args_cfg "DATASET SEED" "$@"
xd_train
