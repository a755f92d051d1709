#!/usr/bin/env bash
# Evaluate the CoOp base2new_train.sh run on the new classes (SUBS, default new) at epoch LOADEP (default: the
# config's MAX_EPOCH):  DATA=... bash scripts/coop/base2new_test.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/test_new/DATASET/shots_16/CoOp/CFG/seed${SEED} (CFG as in base2new_train.sh)
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoOp
parse_args "DATASET SEED" "$@"
case $DATASET in imagenet) CFG=vit_b16_ep50_ctxv1 ;; *) CFG=vit_b16_ctxv1 ;; esac
b2n_eval "$(b2n_model_dir)" new
