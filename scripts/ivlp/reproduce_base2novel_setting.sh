#!/usr/bin/env bash
# Evaluate IVLP weights WEIGHTSPATH/base/seed${SEED} on the base and new classes (SUBS) at epoch LOADEP
# (default: MAX_EPOCH, 20):  DATA=... bash scripts/ivlp/reproduce_base2novel_setting.sh DATASET SEED WEIGHTSPATH
# -> output/base2new/test_{base,new}/DATASET/shots_16/IVLP/vit_b16_c2_ep20_batch4_4+4ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=IVLP CFG=vit_b16_c2_ep20_batch4_4+4ctx
parse_args "DATASET SEED WEIGHTSPATH" "$@"
b2n_eval "$WEIGHTSPATH/base/seed$SEED" "base new"
