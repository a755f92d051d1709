#!/usr/bin/env bash
# IVLP cross-dataset / DG source training (all classes, 16 shots; DATASET normally imagenet):
#   DATA=... bash scripts/ivlp/xd_train.sh DATASET SEED [KEY VALUE ...]
# -> output/DATASET/IVLP/vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets_16shots/seed${SEED} (upstream names a missing ep5 config)
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=IVLP CFG=vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets
parse_args "DATASET SEED" "$@"
xd_train
