#!/usr/bin/env bash
# PromptSRC base-to-new training on the base classes (16 shots), as PromptSRC's scripts/promptsrc:
#   DATA=/path/to/datasets bash scripts/promptsrc/base2new_train.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/train_base/DATASET/shots_16/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptSRC CFG=vit_b16_c2_ep20_batch4_4+4ctx
parse_args "DATASET SEED" "$@"
b2n_train
