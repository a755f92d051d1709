#!/usr/bin/env bash
# One array task of scripts/slurm/sweep.sh (submitted by it; not meant to be run by hand):
#   sbatch ... scripts/slurm/task.sh --phase P METHOD PROTOCOL [sweep options] [KEY VALUE ...]
# Runs `python -m sweep ... --task $SLURM_ARRAY_TASK_ID` and passes USR1 (Slurm's warning before a time limit or a
# preemption: #SBATCH --signal=B:USR1@<seconds>) and TERM on to it. When train.py stopped after writing a
# checkpoint (exit status 3), the task requeues itself; the requeued task resumes from that checkpoint.
set -uo pipefail
read -r -a PYCMD <<< "${PY:-python}"
# CPU threads of torch: the task's CPUs (without it every task starts one thread per core of the node).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}
: "${SLURM_ARRAY_TASK_ID:?run by sbatch --array (scripts/slurm/sweep.sh)}"
echo "=== $(date '+%F %T') host $(hostname) job ${SLURM_JOB_ID:-?} task $SLURM_ARRAY_TASK_ID" \
    "(restart ${SLURM_RESTART_COUNT:-0})"
"${PYCMD[@]}" -m sweep --task "$SLURM_ARRAY_TASK_ID" "$@" &
child=$!
trap 'echo "=== $(date "+%F %T") USR1: checkpoint at the next batch boundary"; kill -USR1 $child 2>/dev/null' USR1
trap 'kill -TERM $child 2>/dev/null' TERM
rc=0
wait "$child" || rc=$?
while kill -0 "$child" 2>/dev/null; do  # a trapped signal interrupts wait: wait again
    rc=0
    wait "$child" || rc=$?
done
if [ "$rc" -eq 3 ]; then
    echo "=== $(date '+%F %T') checkpoint written; requeueing job ${SLURM_JOB_ID}"
    scontrol requeue "$SLURM_JOB_ID"
    exit 0
fi
echo "=== $(date '+%F %T') exit status $rc"
exit "$rc"
