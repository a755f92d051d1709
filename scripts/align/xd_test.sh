#!/usr/bin/env bash
# Evaluate the ALIGN imagenet model of xd_train.sh on DATASET (the 10 cross-dataset targets or the 4 DG ImageNet
# variants) at epoch LOADEP (default MAX_EPOCH, 2):
#   DATA=... bash scripts/align/xd_test.sh DATASET SEED [CFG] [KEY VALUE ...]
# -> output/evaluation/ALIGN/vit_b16_c2_ep2_batch4_2ctx_cross_datasets_16shots/DATASET/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=ALIGN CFG=vit_b16_c2_ep2_batch4_2ctx_cross_datasets
parse_args_cfg "DATASET SEED" "$@"
xd_test
