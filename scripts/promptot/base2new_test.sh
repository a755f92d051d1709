#!/usr/bin/env bash
# Project script (upstream has only a stale PromptSRC copy): evaluate the base2new_train.sh run of
# DATASET/SEED/DIV/CFG on the base and new classes (SUBS), checkpoint epoch LOADEP (default 31 = upstream
# --load-epoch 30 + 1; 1 for a *testenv config), into output${DIV}/base2new/test_{base,new}/...
#   DATA=... bash scripts/promptot/base2new_test.sh DATASET SEED DIV CFG [KEY VALUE ...]
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptOT
parse_args "DATASET SEED DIV CFG" "$@"
case $CFG in *testenv*) DEFAULT_LOADEP=1 ;; *) DEFAULT_LOADEP=31 ;; esac
b2n_eval "$(b2n_model_dir)" "base new"
