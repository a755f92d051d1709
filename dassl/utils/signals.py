"""Signals a cluster sends to a run, turned into orderly stops.

* SIGTERM (Slurm time limit, ``scancel``, preemption without grace): one log line, then exit status 143;
  the log is complete up to that line and the next run resumes from the last checkpoint.
* SIGUSR1 (``#SBATCH --signal=B:USR1@<seconds>`` before a time limit or a preemption): a request, served at
  the next batch boundary by the trainer (:func:`checkpoint_requested`), which writes a checkpoint holding the
  mid-epoch state and exits with :data:`EXIT_PREEMPTED`; the resumed run reproduces the uninterrupted one.
"""
import os
import signal

__all__ = ["EXIT_PREEMPTED", "install", "checkpoint_requested", "request_checkpoint", "Preempted"]

EXIT_PREEMPTED = 3  # a checkpoint was written on request; rerun (or requeue) the same command to resume
_main_pid = None
_requested = False


class Preempted(SystemExit):
    """Raised after the requested checkpoint is written; ``train.py`` exits with :data:`EXIT_PREEMPTED`."""

    def __init__(self, message):
        super().__init__(EXIT_PREEMPTED)
        self.message = message


def request_checkpoint(*_):
    global _requested
    _requested = True


def checkpoint_requested():
    return _requested


def _on_sigterm(signum, frame):
    if os.getpid() != _main_pid:  # a forked data-loader worker: just go
        os._exit(128 + signum)
    print("Terminated (SIGTERM). The log ends here; rerun the same command to resume from the last checkpoint.")
    raise SystemExit(128 + signum)


def install():
    """Install the SIGTERM and SIGUSR1 handlers in the main process of a run."""
    global _main_pid, _requested
    _main_pid = os.getpid()
    _requested = False
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGUSR1, request_checkpoint)
