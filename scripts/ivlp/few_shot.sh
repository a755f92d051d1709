#!/usr/bin/env bash
# IVLP few-shot training on all classes for seeds $SEEDS (default 1 2 3); the final test is the result:
#   DATA=... bash scripts/ivlp/few_shot.sh DATASET SHOTS [KEY VALUE ...]
# -> output/DATASET/IVLP/vit_b16_c2_ep50_batch4_4+4ctx_few_shot_${SHOTS}shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=IVLP CFG=vit_b16_c2_ep50_batch4_4+4ctx_few_shot
parse_args "DATASET SHOTS" "$@"
few_shot ""
