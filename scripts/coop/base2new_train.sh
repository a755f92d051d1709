#!/usr/bin/env bash
# CoOp base-to-new training on the base classes (16 shots):
#   DATA=/path/to/datasets bash scripts/coop/base2new_train.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/train_base/DATASET/shots_16/CoOp/CFG/seed${SEED}
# Config as in the CoCoOp base-to-new protocol: vit_b16_ctxv1 (200 epochs, 4 context tokens initialised from
# "a photo of a"), vit_b16_ep50_ctxv1 on imagenet. CoOp's repository ships no CoOp base-to-new script.
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoOp
parse_args "DATASET SEED" "$@"
case $DATASET in imagenet) CFG=vit_b16_ep50_ctxv1 ;; *) CFG=vit_b16_ctxv1 ;; esac
b2n_train
