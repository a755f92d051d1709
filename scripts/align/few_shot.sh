#!/usr/bin/env bash
# ALIGN few-shot training on all classes for seeds $SEEDS (default 1 2 3); the final test is the result.
# Upstream ships no ALIGN few-shot script; its epoch rule (TRAINER.ALIGN.EPOCH_OVERRIDE) trains 30 / 50 / 80
# epochs for 1 / 2-4 / 8-16 shots (ImageNet 20):
#   DATA=... bash scripts/align/few_shot.sh DATASET SHOTS [CFG] [KEY VALUE ...]
# -> output/DATASET/ALIGN/CFG_${SHOTS}shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
TRAINER=ALIGN CFG=vit_b16_c2_ep5_batch4_2ctx
parse_args_cfg "DATASET SHOTS" "$@"
few_shot ""
