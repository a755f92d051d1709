"""Sweeps of many runs (local GPUs/CPU jobs: ``python -m sweep``; Slurm job arrays: ``scripts/slurm/sweep.sh``)
and the one rule that says when a run is finished (:mod:`sweep.finished`). Standard library only at import."""
