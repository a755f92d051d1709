#!/usr/bin/env bash
# Evaluate the imagenet model of xd_train.sh on DATASET (note the argument order CFG DIV, as upstream):
#   DATA=... bash scripts/promptot/xd_test.sh DATASET SEED CFG DIV [KEY VALUE ...]
# -> output${DIV}/evaluation/PromptOT/${CFG}_16shots/DATASET/seed${SEED}; epoch LOADEP (default 11 = upstream
# --load-epoch 10 + 1). Unlike upstream, --div is passed too (it only changes the logged config).
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptOT
parse_args "DATASET SEED CFG DIV" "$@"
DEFAULT_LOADEP=11
xd_test
