#!/usr/bin/env bash
# Mini-world demo (CPU, no downloads; README, "Mini-world demo"): base-to-novel generalisation of zero-shot
# CLIP, IVLP and Prompt-OT on the shipped `miniworld` backbone, through the normal scripts, one seed:
#   1. render the MiniWorld dataset in CoOp's layout (cached: a second run reuses it);
#   2. ZeroshotCLIP on the base and new classes     (scripts/zsclip/base2new_test.sh);
#   3. IVLP: train on base (16 shots), test on new   (scripts/ivlp/base2new_{train,test}.sh);
#   4. Prompt-OT: train on base, test on base + new  (scripts/promptot/base2new_{train,test}.sh);
#   5. ALIGN: train on base, test on new              (scripts/align/base2new_{train,test}.sh);
#   6. SOT-GLP: 16 shots on the base classes; OOD detection against the new classes (scripts/sotglp/*.sh);
#   7. tabulate with extract_log.py (Base / New / HM).
# Finished runs are skipped (the scripts' own rule): delete $OUT_DEMO (default output/demo/runs) to rerun.
# Environment: PY (python), DATA_DEMO (data root, default output/demo/data), OUT_DEMO, SEED_DEMO (default 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-python}
export PY DASSL_ENV_INFO=${DASSL_ENV_INFO:-short} PYTHONUNBUFFERED=1
DATA=${DATA_DEMO:-output/demo/data}
OUT=${OUT_DEMO:-output/demo/runs}
SEED=${SEED_DEMO:-1}
DS=miniworld
# The backbone's input is 48x48 (the project's transforms at that size; random crops keep >= 50% of the image,
# as a crop of 8% (the default) of a 48-pixel picture often misses the object); the data loader runs in-process.
# Epochs, batch size and learning rates are each method's own config (IVLP 20 epochs, Prompt-OT 40, batch 4);
# Prompt-OT is evaluated at its last epoch (LOADEP) and with lambda 10 (its released value).
COMMON=(MODEL.BACKBONE.NAME miniworld INPUT.SIZE "(48, 48)" INPUT.RRCROP_SCALE "(0.5, 1.0)"
    DATALOADER.NUM_WORKERS 0 DATALOADER.TEST.BATCH_SIZE 200)
PROMPTOT_CFG=vit_b16_c2_ep20_batch4_4+4ctx-Copy3
PROMPTOT_EPOCHS=40
START=$(date +%s)

step() {
    echo
    echo "== [$1/7] $2   (elapsed $(( $(date +%s) - START )) s)"
}

mkdir -p "$DATA" "$OUT"
export DATA OUTPUT=$OUT

step 1 "Render the mini-world (40 classes: 20 base + 20 new; cached in $DATA)"
$PY -m miniworld.write --root "$DATA"

step 2 "Zero-shot CLIP (miniworld backbone) on base and new classes"
bash scripts/zsclip/base2new_test.sh "$DS" "$SEED" "${COMMON[@]}"

step 3 "IVLP: train on the base classes (16 shots), evaluate on the new classes"
bash scripts/ivlp/base2new_train.sh "$DS" "$SEED" "${COMMON[@]}"
bash scripts/ivlp/base2new_test.sh "$DS" "$SEED" "${COMMON[@]}"

step 4 "Prompt-OT (lambda 10): train on the base classes, evaluate on base and new"
bash scripts/promptot/base2new_train.sh "$DS" "$SEED" 10.0 "$PROMPTOT_CFG" "${COMMON[@]}"
LOADEP=$PROMPTOT_EPOCHS bash scripts/promptot/base2new_test.sh "$DS" "$SEED" 10.0 "$PROMPTOT_CFG" "${COMMON[@]}"

# --- ALIGN stage (self-contained) ---------------------------------------------------------------------------
# Its released config (N = M = 4 prompt sets, two-level OT, LR 0.0025, batch 4) with 5 epochs instead of 20
# (each image is encoded once per prompt set: 20 epochs would take most of the demo's 10 minutes on 2 cores).
# OMP_WAIT_POLICY=PASSIVE: its many mid-sized tensor operations stall under torch's spin-waiting thread pool
# when other processes share the two cores.
ALIGN_EPOCHS=5
step 5 "ALIGN ($ALIGN_EPOCHS epochs): train on the base classes, evaluate on the new classes"
(
    export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
    bash scripts/align/base2new_train.sh "$DS" "$SEED" "${COMMON[@]}" OPTIM.MAX_EPOCH "$ALIGN_EPOCHS"
    bash scripts/align/base2new_test.sh "$DS" "$SEED" "${COMMON[@]}" OPTIM.MAX_EPOCH "$ALIGN_EPOCHS"
)
# ------------------------------------------------------------------------------------------------------------


# --- SOT-GLP stage (self-contained): 16 shots on the 20 base classes; the final test of that run also runs the
# OOD evaluation (TRAINER.SOTGLP.EVAL_OOD True) with the 20 held-out (new) classes' test images as the OOD set
# (OOD_DATASETS held_out_classes), ID = the base classes' test images: one run, one ID pass (scripts/sotglp/
# eval_ood.sh does the same from a checkpoint). Released recipe, 5 epochs (configs/trainers/SOTGLP/miniworld.yaml).
step 6 "SOT-GLP: 16 shots on the base classes, then OOD detection (OOD = the held-out new classes)"
(
    export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
    bash scripts/sotglp/few_shot.sh "$DS" "$SEED" "${COMMON[@]}" DATASET.SUBSAMPLE_CLASSES base \
        TRAINER.SOTGLP.EVAL_OOD True TRAINER.SOTGLP.OOD_DATASETS "['held_out_classes']"
)
# --- end of the SOT-GLP stage

step 7 "Results (extract_log.py $OUT)"
$PY extract_log.py "$OUT" --output_path "$OUT/tables" --overwrite
echo
echo "== Done in $(( $(date +%s) - START )) s. Logs under $OUT; tables in $OUT/tables."
