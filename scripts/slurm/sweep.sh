#!/usr/bin/env bash
# Submit a sweep as Slurm job arrays: one array task per (dataset, seed) (per shot count too for few-shot), then a
# dependent job that tabulates the results with extract_log.py. Run from anywhere, on a login node:
#   DATA=/path/to/datasets bash scripts/slurm/sweep.sh METHOD PROTOCOL [--datasets D ...] [--seeds S ...]
#       [--shots K ...] [--source imagenet] [--div 10.0] [--cfg CFG]
#       [--partition P] [--account A] [--time 24:00:00] [--gpus 1] [--cpus 8] [--mem 64G]
#       [--signal-seconds 300] [--max-parallel N] [--sbatch "more sbatch options"] [KEY VALUE ...]
# METHOD: promptot ivlp promptsrc coop zsclip; PROTOCOL: base2new fewshot xd (see sweep/tasks.py). The task list
# is `python -m sweep ... --list`. Every task is idempotent: a finished run is skipped, a partial one resumes.
# Preemption and time limits: Slurm sends USR1 --signal-seconds before the end; train.py writes a checkpoint at
# the next batch boundary (mid-epoch state included) and the task requeues itself; the requeued task resumes.
# Environment: DATA (required), PY (python command, default python), OUTPUT (parent of the output roots).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
read -r -a PYCMD <<< "${PY:-python}"
die() {
    echo "Error: $*" >&2
    exit 2
}
[ $# -ge 2 ] || die "usage: bash scripts/slurm/sweep.sh METHOD PROTOCOL [options] [KEY VALUE ...]"
[ -n "${DATA:-}" ] || die "DATA is not set: DATA=/path/to/datasets bash scripts/slurm/sweep.sh ..."
[ -d "$DATA" ] || die "DATA=$DATA is not a directory"
DATA=$(cd "$DATA" && pwd)
[ -z "${OUTPUT:-}" ] || { mkdir -p "$OUTPUT"; OUTPUT=$(cd "$OUTPUT" && pwd); }
command -v sbatch >/dev/null || die "sbatch not found: run this on a Slurm login node (or use python -m sweep)"

SWEEP=("$1" "$2")
shift 2
SBATCH=(--requeue --open-mode=append --chdir="$REPO") SIGNAL=300 MAX_PARALLEL="" GPUS=1
while [ $# -gt 0 ]; do
    case $1 in
        --partition | --account | --time | --mem)
            [ $# -ge 2 ] || die "$1 needs a value"
            SBATCH+=("$1=$2"); shift 2 ;;
        --cpus) [ $# -ge 2 ] || die "--cpus needs a value"; SBATCH+=("--cpus-per-task=$2"); shift 2 ;;
        --gpus) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--gpus takes a number of GPUs per task, got '${2:-}'"
            GPUS=$2; shift 2 ;;
        --signal-seconds) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--signal-seconds takes seconds, got '${2:-}'"
            SIGNAL=$2; shift 2 ;;
        --max-parallel) [[ ${2:-} =~ ^[0-9]+$ ]] || die "--max-parallel takes a number, got '${2:-}'"
            MAX_PARALLEL=%$2; shift 2 ;;
        --sbatch) read -r -a more <<< "${2:-}"; SBATCH+=("${more[@]}"); shift 2 ;;
        *) SWEEP+=("$1"); shift ;;
    esac
done
[ "$GPUS" -eq 0 ] || SBATCH+=("--gres=gpu:$GPUS")
SBATCH+=("--signal=B:USR1@$SIGNAL")

cd "$REPO"
ROOT=$("${PYCMD[@]}" -m sweep --print-root "${SWEEP[@]}") || exit $?
TABLE=$("${PYCMD[@]}" -m sweep --print-table-dir "${SWEEP[@]}")
LOGS=$ROOT/slurm_logs
mkdir -p "$LOGS"
name="${SWEEP[0]}-${SWEEP[1]}"
export DATA PY="${PY:-python}"
[ -z "${OUTPUT:-}" ] || export OUTPUT
dep=()
for phase in 0 1; do
    n=$("${PYCMD[@]}" -m sweep --phase "$phase" --count "${SWEEP[@]}")
    [ "$n" -gt 0 ] || continue
    job=$(sbatch --parsable --job-name="$name" --array="0-$((n - 1))$MAX_PARALLEL" "${SBATCH[@]}" "${dep[@]}" \
        --output="$LOGS/%x-%A_%a.out" scripts/slurm/task.sh --phase "$phase" "${SWEEP[@]}")
    job=${job%%;*}
    echo "Submitted array job $job: $n tasks (phase $phase); logs $LOGS/$name-${job}_<task>.out"
    dep=("--dependency=afterany:$job")
done
[ ${#dep[@]} -gt 0 ] || die "the sweep has no tasks"
job=$(sbatch --parsable --job-name="$name-table" "${dep[@]}" --chdir="$REPO" --output="$LOGS/%x-%j.out" \
    ${SBATCH_TABLE_OPTS:-} scripts/slurm/extract.sh "$ROOT" "$TABLE")
job=${job%%;*}
echo "Submitted job $job: results table in $TABLE when the arrays end (extract_log.py)"
echo "Progress: squeue --name=$name,$name-table; sacct -j ${dep[0]#--dependency=afterany:}; rerun this command to" \
    "resubmit only what is unfinished (finished runs are skipped)"
