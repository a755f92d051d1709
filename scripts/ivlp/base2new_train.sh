#!/usr/bin/env bash
# IVLP base-to-new training on the base classes (16 shots), as PromptSRC's scripts/independent-vlp (*_ivlp.sh):
#   DATA=/path/to/datasets bash scripts/ivlp/base2new_train.sh DATASET SEED [KEY VALUE ...]
# -> output/base2new/train_base/DATASET/shots_16/IVLP/vit_b16_c2_ep20_batch4_4+4ctx/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=IVLP CFG=vit_b16_c2_ep20_batch4_4+4ctx
parse_args "DATASET SEED" "$@"
b2n_train
