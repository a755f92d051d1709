#!/usr/bin/env bash
# Evaluate the CoCoOp base2new_train.sh run on the new classes (SUBS, default new) at epoch LOADEP (default: the
# config's MAX_EPOCH, 10, upstream's LOADEP):
#   DATA=... bash scripts/cocoop/base2new_test.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/test_new/DATASET/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoCoOp CFG=vit_b16_c4_ep10_batch1_ctxv1
parse_args "DATASET SEED" "$@"
b2n_eval "$(b2n_model_dir)" new
