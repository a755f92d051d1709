#!/usr/bin/env bash
# MaPLe few-shot training on all classes for seeds $SEEDS (default 1 2 3); the final test is the result
# (upstream ships no MaPLe few-shot script; config: see its header):
#   DATA=... bash scripts/maple/few_shot.sh DATASET SHOTS [KEY VALUE ...]
# -> output/DATASET/MaPLe/vit_b16_c2_ep50_batch4_2ctx_few_shot_${SHOTS}shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=MaPLe CFG=vit_b16_c2_ep50_batch4_2ctx_few_shot
parse_args "DATASET SHOTS" "$@"
few_shot ""
