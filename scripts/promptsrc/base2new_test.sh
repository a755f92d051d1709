#!/usr/bin/env bash
# Evaluate the PromptSRC base2new_train.sh run on the new classes (SUBS, default new) at epoch LOADEP (default:
# the config's MAX_EPOCH, 20):  DATA=... bash scripts/promptsrc/base2new_test.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/test_new/DATASET/shots_16/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptSRC CFG=vit_b16_c2_ep20_batch4_4+4ctx
parse_args "DATASET SEED" "$@"
b2n_eval "$(b2n_model_dir)" new
