#!/usr/bin/env bash
# MaPLe base-to-new training on the base classes (16 shots), as multimodal-prompt-learning's
# scripts/maple/base2new_train_maple.sh:
#   DATA=/path/to/datasets bash scripts/maple/base2new_train.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/train_base/DATASET/shots_16/MaPLe/vit_b16_c2_ep5_batch4_2ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=MaPLe CFG=vit_b16_c2_ep5_batch4_2ctx
parse_args "DATASET SEED" "$@"
b2n_train
