"""Fault injection for the crash-safety tests: SIGKILL the process at a chosen point of a run.

Off unless the environment sets one of:

* ``DASSL_FAULT_TRACE=<file>``: append the name of every crash point reached to ``<file>`` (one per line),
  so a test knows how many points a run has;
* ``DASSL_FAULT_KILL_AT=<n>``: send SIGKILL to this process at the n-th crash point (1-based);
* ``DASSL_FAULT_USR1_AT=<n>``: send SIGUSR1 (a preemption notice) to this process at the n-th crash point.

Crash points sit at batch boundaries and at every stage of a checkpoint write (each ``write`` call torch
makes while serialising, before fsync, before and after the rename, the pointer file).
"""
import os
import signal

_count = 0


def _settings():
    env = os.environ
    return (int(env.get("DASSL_FAULT_KILL_AT", "0") or 0), int(env.get("DASSL_FAULT_USR1_AT", "0") or 0),
            env.get("DASSL_FAULT_TRACE", ""))


def enabled():
    return any(_settings())


def crashpoint(name):
    """Count one crash point; signal this process if it is the chosen one."""
    global _count
    kill_at, usr1_at, trace = _settings()
    if not (kill_at or usr1_at or trace):
        return
    _count += 1
    if trace:
        with open(trace, "a") as f:
            f.write(f"{_count} {name}\n")
    if _count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if _count == usr1_at:
        os.kill(os.getpid(), signal.SIGUSR1)


class _CrashingFile:
    """A binary file whose every ``write`` is a crash point (a kill leaves a partly written file)."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        n = self._f.write(data)
        self._f.flush()
        crashpoint("inside checkpoint write")
        return n

    def __getattr__(self, name):
        return getattr(self._f, name)


def wrap_file(f):
    return _CrashingFile(f) if enabled() else f
