#!/usr/bin/env bash
# Evaluate CoCoOp weights WEIGHTSPATH/base/seed${SEED} (PromptSRC's convention) on the base and new classes (SUBS)
# at epoch LOADEP (default: MAX_EPOCH, 10):
#   DATA=... bash scripts/cocoop/reproduce_base2novel_setting.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
# -> output/base2new/test_{base,new}/DATASET/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoCoOp CFG=vit_b16_c4_ep10_batch1_ctxv1
parse_args "DATASET SEED WEIGHTSPATH" "$@"
b2n_eval "$WEIGHTSPATH/base/seed$SEED" "base new"
