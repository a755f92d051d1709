#!/usr/bin/env bash
# Project script (upstream has only a stale PromptSRC copy): few-shot training on all classes, seeds $SEEDS
# (default 1 2 3); the final test of each run is the result:
#   DATA=... bash scripts/promptot/few_shot.sh DATASET SHOTS DIV CFG [KEY VALUE ...]
# -> output${DIV}/DATASET/PromptOT/${CFG}_${SHOTS}shots/seed${SEED}; CFG e.g. vit_b16_c2_ep50_batch4_4+4ctx_few_shot
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=PromptOT
parse_args "DATASET SHOTS DIV CFG" "$@"
few_shot ""
