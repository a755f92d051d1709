"""One run per output directory: ``<OUTPUT_DIR>/run.lock`` names the process writing there.

The lock holds the PID, the host, the start time (and the Slurm job, when there is one) of the run. A second
run into the same directory stops with one line naming the holder. A lock left by a run that died (SIGKILL,
node crash) is taken over with a warning when that can be checked: the holder ran on this host and its
process is gone, or the holder was an earlier attempt of the same Slurm job (a requeued array task).
"""
import json
import os
import os.path as osp
import socket
import time

__all__ = ["RunLock", "RunLockError", "LOCK_NAME"]

LOCK_NAME = "run.lock"


class RunLockError(RuntimeError):
    """Another live run holds the output directory."""


def _proc_start(pid):
    """Start time of ``pid`` in clock ticks since boot (Linux), so a reused PID is not taken for the holder."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid, proc_start=None):
    """Whether process ``pid`` of this host exists (and, given ``proc_start``, is the same process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return proc_start is None or _proc_start(pid) in (None, proc_start)


def _slurm_job():
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    if job and os.environ.get("SLURM_ARRAY_TASK_ID"):
        job += "_" + os.environ["SLURM_ARRAY_TASK_ID"]
    return job


class RunLock:
    """``with RunLock(directory): ...`` or ``acquire()`` / ``release()``."""

    def __init__(self, directory):
        self.directory = directory
        self.path = osp.join(directory, LOCK_NAME)
        self.info = {"pid": os.getpid(), "host": socket.gethostname(),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S"), "proc_start": _proc_start(os.getpid()),
                     "slurm_job": _slurm_job()}
        self.held = False

    def _create(self):
        fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "w") as f:
            json.dump(self.info, f)
            f.flush()
            os.fsync(f.fileno())

    def _holder(self):
        try:
            with open(self.path) as f:
                return json.load(f)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # empty or half-written: its writer was killed while creating it

    def _stale_reason(self, holder):
        if not holder:
            return "an unreadable lock (its writer was killed while creating it)"
        same_host = holder.get("host") == self.info["host"]
        if same_host and not pid_alive(int(holder.get("pid", -1)), holder.get("proc_start")):
            return f"the lock of PID {holder.get('pid')} (started {holder.get('started')}), which is no longer running"
        if holder.get("slurm_job") and holder.get("slurm_job") == self.info["slurm_job"]:
            return f"the lock of an earlier attempt of Slurm job {holder['slurm_job']} (requeued)"
        return None

    def acquire(self):
        os.makedirs(self.directory, exist_ok=True)
        for _ in range(5):
            try:
                self._create()
                self.held = True
                return self
            except FileExistsError:
                pass
            holder = self._holder()
            if holder is None:
                continue  # released meanwhile
            reason = self._stale_reason(holder)
            if reason is None:
                raise RunLockError(
                    f"{self.directory} is in use by another run (PID {holder.get('pid')} on host "
                    f"{holder.get('host')}, started {holder.get('started')}"
                    + (f", Slurm job {holder['slurm_job']}" if holder.get("slurm_job") else "")
                    + "). Wait for it to end or use another --output-dir; if that run is dead, delete "
                    f"{self.path}.")
            print(f"Warning: taking over {reason} in {self.directory}")
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        raise RunLockError(f"could not take the lock {self.path} (other runs keep starting there)")

    def release(self):
        if not self.held:
            return
        self.held = False
        holder = self._holder()
        if holder and holder.get("pid") == self.info["pid"] and holder.get("host") == self.info["host"]:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
