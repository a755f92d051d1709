#!/usr/bin/env bash
# SOT-GLP's projection-free variant (TRAINER.SOTGLP.LEARN_LOCAL_PROJ False: local_proj stays the identity; the
# abstract attributes its 94.2% OOD AUROC to it), otherwise as few_shot.sh:
#   DATA=... bash scripts/sotglp/few_shot_projfree.sh DATASET [SEED] [KEY VALUE ...]
# -> output/DATASET/SOTGLP/DATASET_projfree_16shots/seed${SEED}
. "$(dirname "${BASH_SOURCE[0]}")/sotglp.bash"
sotglp_args "$@"
VARIANT=_projfree
sotglp_train TRAINER.SOTGLP.LEARN_LOCAL_PROJ False
