#!/usr/bin/env bash
# Prompt-OT base-to-new sweep (README recipe): for each dataset and seed, base2new_train.sh then
# base2new_test.sh (base and new classes at epoch LOADEP, default 31), then extract_log.py on the tree.
#   DATA=/path/to/datasets bash scripts/promptot/base2new_all.sh [DIV [CFG [KEY VALUE ...]]]
# DIV defaults to 10.0, CFG to vit_b16_c2_ep20_batch4_4+4ctx-Copy3. Environment: DATASETS (default: the 11
# datasets, upstream order), SEEDS (default 1 2 3), plus those of scripts/common.sh. Finished runs are skipped,
# partial ones resumed; a failed run is reported and the sweep goes on (exit status 1 at the end).
. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
check_data
DIV=${1:-10.0}
CFG=${2:-vit_b16_c2_ep20_batch4_4+4ctx-Copy3}
shift $(($# < 2 ? $# : 2))
check_div
root=$(out_root "output$DIV")
cd "$REPO"
failed=()
for dataset in ${DATASETS:-imagenet caltech101 food101 dtd ucf101 oxford_flowers oxford_pets fgvc_aircraft \
    stanford_cars sun397 eurosat}; do
    for seed in ${SEEDS:-1 2 3}; do
        echo "=== $dataset seed $seed (DIV $DIV, $CFG)"
        bash scripts/promptot/base2new_train.sh "$dataset" "$seed" "$DIV" "$CFG" "$@" \
            && bash scripts/promptot/base2new_test.sh "$dataset" "$seed" "$DIV" "$CFG" "$@" \
            || failed+=("$dataset/seed$seed")
    done
done
if [ -d "$root" ]; then
    "${PYCMD[@]}" extract_log.py "$root" || failed+=("extract_log.py")
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "Failed: ${failed[*]}" >&2
    exit 1
fi
