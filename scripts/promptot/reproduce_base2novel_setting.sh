#!/usr/bin/env bash
# Evaluate trained Prompt-OT weights WEIGHTSPATH/seed${SEED} on the base and new classes (as upstream):
#   DATA=... bash scripts/promptot/reproduce_base2novel_setting.sh DATASET SEED WEIGHTSPATH CFG DIV [KEY VALUE ...]
# WEIGHTSPATH is e.g. output10.0/base2new/train_base/DATASET/shots_16/PromptOT/CFG. Loads epoch LOADEP (default
# 31, i.e. upstream --load-epoch 30 + 1; 1 for a *testenv config) into output${DIV}/base2new/test_{base,new}/...
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptOT
parse_args "DATASET SEED WEIGHTSPATH CFG DIV" "$@"
case $CFG in *testenv*) DEFAULT_LOADEP=1 ;; *) DEFAULT_LOADEP=31 ;; esac
b2n_eval "$WEIGHTSPATH/seed$SEED" "base new"
