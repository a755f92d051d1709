#!/usr/bin/env bash
# Evaluate CoOp weights WEIGHTSPATH/base/seed${SEED} (PromptSRC's convention) on the base and new classes:
#   DATA=... bash scripts/coop/reproduce_base2novel_setting.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
# -> output/base2new/test_{base,new}/DATASET/shots_16/CoOp/CFG/seed${SEED} (CFG as in base2new_train.sh)
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoOp
parse_args "DATASET SEED WEIGHTSPATH" "$@"
case $DATASET in imagenet) CFG=vit_b16_ep50_ctxv1 ;; *) CFG=vit_b16_ctxv1 ;; esac
b2n_eval "$WEIGHTSPATH/base/seed$SEED" "base new"
