#!/usr/bin/env bash
# The last job of scripts/slurm/sweep.sh (runs when the arrays end): the results table of the sweep.
#   sbatch ... scripts/slurm/extract.sh OUTPUT_ROOT TABLE_DIR
set -euo pipefail
read -r -a PYCMD <<< "${PY:-python}"
"${PYCMD[@]}" extract_log.py "$1" --output-path "$2" --overwrite
