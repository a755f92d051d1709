#!/usr/bin/env bash
# CoCoOp base-to-new training on the base classes (16 shots), as CoOp's scripts/cocoop/base2new_train.sh:
#   DATA=/path/to/datasets bash scripts/cocoop/base2new_train.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/train_base/DATASET/shots_16/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoCoOp CFG=vit_b16_c4_ep10_batch1_ctxv1
parse_args "DATASET SEED" "$@"
b2n_train
