#!/usr/bin/env bash
# Evaluate the ALIGN base2new_train.sh run on the new classes (SUBS, default new) at epoch LOADEP (default: the
# config's MAX_EPOCH, 20; upstream's LOADEP=15 names a checkpoint that is never saved):
#   DATA=... bash scripts/align/base2new_test.sh DATASET SEED [CFG] [KEY VALUE ...]
# -> output/base2new/test_new/DATASET/shots_16/ALIGN/CFG/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=ALIGN CFG=vit_b16_c2_ep5_batch4_2ctx
[ "${1:-}" != sun397 ] || CFG=sun397
parse_args_cfg "DATASET SEED" "$@"
b2n_eval "$(b2n_model_dir)" new
