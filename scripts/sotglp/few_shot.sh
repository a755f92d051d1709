#!/usr/bin/env bash
# SOT-GLP few-shot training (16 shots, the values of upstream train_script/scripts/run_<dataset>.sh in
# configs/trainers/SOTGLP/DATASET.yaml); the last-epoch test is the result:
#   DATA=... bash scripts/sotglp/few_shot.sh DATASET [SEED] [KEY VALUE ...]
# -> output/DATASET/SOTGLP/DATASET_16shots/seed${SEED}. SEED defaults to $SEEDS, else 1 (upstream runs one seed).
. "$(dirname "${BASH_SOURCE[0]}")/sotglp.bash"
sotglp_args "$@"
sotglp_train
