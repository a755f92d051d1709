#!/usr/bin/env bash
# Evaluate MaPLe weights WEIGHTSPATH/base/seed${SEED} (the released ones, as upstream's reproduce_maple.sh) on the
# base and new classes (SUBS) at epoch LOADEP (default: MAX_EPOCH, 5):
#   DATA=... bash scripts/maple/reproduce_base2novel_setting.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
# -> output/base2new/test_{base,new}/DATASET/shots_16/MaPLe/vit_b16_c2_ep5_batch4_2ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=MaPLe CFG=vit_b16_c2_ep5_batch4_2ctx
parse_args "DATASET SEED WEIGHTSPATH" "$@"
b2n_eval "$WEIGHTSPATH/base/seed$SEED" "base new"
