#!/usr/bin/env bash
# ALIGN (upstream MMP) base-to-new training on the base classes (16 shots), as wds2014/ALIGN's
# scripts/mmp/base_to_new_train.sh; CFG defaults to vit_b16_c2_ep5_batch4_2ctx (sun397 for SUN397):
#   DATA=/path/to/datasets bash scripts/align/base2new_train.sh DATASET SEED [CFG] [KEY VALUE ...]
# -> output/base2new/train_base/DATASET/shots_16/ALIGN/CFG/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=ALIGN CFG=vit_b16_c2_ep5_batch4_2ctx
[ "${1:-}" != sun397 ] || CFG=sun397
parse_args_cfg "DATASET SEED" "$@"
b2n_train
