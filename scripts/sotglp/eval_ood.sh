#!/usr/bin/env bash
# OOD evaluation of a trained SOT-GLP model (eval-only, checkpoint epoch LOADEP, default the config's last epoch:
# 50 for ImageNet) with TRAINER.SOTGLP.EVAL_OOD True: the ID test split, then FPR95 / AUROC per OOD set:
#   DATA=... bash scripts/sotglp/eval_ood.sh SEED [MODEL_DIR] [KEY VALUE ...]
# -> output/evaluation/SOTGLP/${SOURCE}${VARIANT}_ood/seed${SEED}. MODEL_DIR defaults to the few_shot.sh run
# output/${SOURCE}/SOTGLP/${SOURCE}${VARIANT}_16shots/seed${SEED}; it may also be a folder holding an upstream
# checkpoint sotglp_imagenet_vit_b16_seed${SEED}.ckpt. Environment: SOURCE (ID dataset, default imagenet;
# others need TRAINER.SOTGLP.OOD_DATASETS), VARIANT ("" or _projfree, the few_shot_projfree.sh runs).
variant=${VARIANT:-}
. "$(dirname "${BASH_SOURCE[0]}")/sotglp.bash"
SOURCE=${SOURCE:-imagenet}
VARIANT=$variant
case $VARIANT in "" | _projfree) ;; *) die "VARIANT must be empty or _projfree, got '$VARIANT'" ;; esac
seed=${1:-}
[[ $seed =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer, got '$seed'" \
    "(usage: bash scripts/sotglp/eval_ood.sh SEED [MODEL_DIR] [KEY VALUE ...])"
shift
model_dir=""
if [ $# -gt 0 ] && [ $(( $# % 2 )) -eq 1 ]; then
    model_dir=$(abspath "$1")
    shift
fi
parse_args "DATASET SEED" "$SOURCE" "$seed" "$@"
CFG=$DATASET
run_eval "$ROOT/evaluation/$TRAINER/${DATASET}${VARIANT}_ood/seed$SEED" \
    "${model_dir:-$ROOT/$DATASET/$TRAINER/${DATASET}${VARIANT}_16shots/seed$SEED}" TRAINER.SOTGLP.EVAL_OOD True
