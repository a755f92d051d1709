#!/usr/bin/env bash
# Evaluate PromptSRC weights WEIGHTSPATH/base/seed${SEED} on the base and new classes (SUBS) at epoch LOADEP
# (default: MAX_EPOCH, 20):  DATA=... bash scripts/promptsrc/reproduce_base2novel_setting.sh DATASET SEED WEIGHTSPATH
# -> output/base2new/test_{base,new}/DATASET/shots_16/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptSRC CFG=vit_b16_c2_ep20_batch4_4+4ctx
parse_args "DATASET SEED WEIGHTSPATH" "$@"
b2n_eval "$WEIGHTSPATH/base/seed$SEED" "base new"
