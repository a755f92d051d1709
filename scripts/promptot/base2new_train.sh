#!/usr/bin/env bash
# Prompt-OT base-to-new training on the base classes (16 shots), as upstream:
#   DATA=/path/to/datasets bash scripts/promptot/base2new_train.sh DATASET SEED DIV CFG [KEY VALUE ...]
# e.g. ... oxford_pets 1 10.0 vit_b16_c2_ep20_batch4_4+4ctx-Copy3 -> output10.0/base2new/train_base/oxford_pets/
# shots_16/PromptOT/vit_b16_c2_ep20_batch4_4+4ctx-Copy3/seed1. DIV is lambda (train.py --div).
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptOT
parse_args "DATASET SEED DIV CFG" "$@"
b2n_train
