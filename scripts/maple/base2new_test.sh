#!/usr/bin/env bash
# Evaluate the MaPLe base2new_train.sh run on the new classes (SUBS, default new) at epoch LOADEP (default: the
# config's MAX_EPOCH, 5, upstream's LOADEP):  DATA=... bash scripts/maple/base2new_test.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/test_new/DATASET/shots_16/MaPLe/vit_b16_c2_ep5_batch4_2ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=MaPLe CFG=vit_b16_c2_ep5_batch4_2ctx
parse_args "DATASET SEED" "$@"
b2n_eval "$(b2n_model_dir)" new
