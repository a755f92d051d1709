#!/usr/bin/env bash
# CoCoOp few-shot training on all classes for seeds $SEEDS (default 1 2 3), config CFG of configs/trainers/CoCoOp
# (vit_b16_c4_ep10_batch1_ctxv1, or vit_b16_c{4,8,16}_ep10_batch1 with random context); the final test is the result.
# CoOp's repository ships no CoCoOp few-shot script; the arguments follow scripts/coop/few_shot.sh:
#   DATA=... bash scripts/cocoop/few_shot.sh DATASET CFG SHOTS [KEY VALUE ...]
# -> output/DATASET/CoCoOp/CFG_${SHOTS}shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=CoCoOp
parse_args "DATASET CFG SHOTS" "$@"
few_shot ""
