"""Run provenance: ``<output dir>/provenance.json``, a small record of what produced a run's numbers.

Written (atomically: temporary file + rename) when ``train.py`` starts and completed when it ends. Every
invocation of ``train.py`` into an output directory appends one *segment* (a resumed or repeated run keeps the
earlier segments), so the file reads::

    {"format": 1, "segments": [
        {"status": "finished", "log": "log.txt", "command": [...], "git": {"commit": ..., "dirty": false},
         "versions": {...}, "device": {...}, "precision": ..., "start_time": ..., "end_time": ...,
         "wall_time_s": ..., "peak_memory_mb": {"cpu_rss": ..., "cuda_max_allocated": ...},
         "metrics": {"accuracy": ...}, "config": {...}, ...},
        {"status": "running", "pid": 4242, "host": "node7", ...}]}

``status`` is ``running`` while the process lives, then ``finished``, ``failed`` (with ``error``),
``interrupted`` (Ctrl-C) or ``terminated`` (SIGTERM: ``kill``, ``scancel``, a SLURM time limit). A process killed
without a chance to write (SIGKILL, out of memory, a node crash) leaves ``running``: the segment's ``pid`` and
``host`` let a reader tell that the run died (:func:`segment_state` checks the process on the same host). ``log`` names the log file of that invocation (``log.txt`` or ``log.txt-<time stamp>``), which is how
``extract_log.py`` ties a result to its segment.
"""
import datetime
import json
import os
import os.path as osp
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time

from .runlock import pid_alive
from .signals import Preempted

FILE_NAME = "provenance.json"
FORMAT = 1
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PACKAGES = {"torch": "torch", "open_clip": "open_clip_torch", "POT": "POT", "numpy": "numpy",
            "torchvision": "torchvision", "yacs": "yacs", "Pillow": "Pillow"}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write(path, record):
    """Atomic JSON write: a reader sees the old record or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(path) or ".", prefix=".tmp-", suffix=FILE_NAME)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, indent=1, default=str)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def read_record(output_dir):
    """The record of ``output_dir`` (``{"format", "segments"}``), or None when there is none or it is unreadable."""
    path = osp.join(output_dir, FILE_NAME)
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("segments"), list):
        return None
    return record


def git_info(repo=REPO):
    """``{"commit", "dirty"}`` of the repository holding this code (None values outside a git checkout)."""
    def git(*args):
        r = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, timeout=20)
        return r.stdout.strip() if r.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    except (OSError, subprocess.SubprocessError):
        commit = status = None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions():
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name, dist in PACKAGES.items():
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info(cfg):
    import torch

    if torch.cuda.is_available() and cfg.USE_CUDA:
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count(),
                "cuda": torch.version.cuda}
    return {"type": "cpu", "name": platform.processor() or platform.machine(), "count": os.cpu_count(),
            "torch_threads": torch.get_num_threads()}


def peak_memory_mb():
    """Peak resident memory of this process (data-loader workers not included) and, on a GPU,
    ``torch.cuda.max_memory_allocated``; in MiB."""
    import resource

    import torch

    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0  # ru_maxrss: KiB on Linux, bytes on macOS
    out = {"cpu_rss": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale, 1),
           "cuda_max_allocated": None}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda_max_allocated"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def _current_log():
    """The log file ``setup_logger`` tees into (its base name), if any."""
    f = getattr(sys.stdout, "file", None)
    name = getattr(f, "name", None)
    return osp.basename(name) if isinstance(name, str) else None


def _precision(cfg, trainer):
    node = getattr(trainer, "cfg_node", "") or cfg.TRAINER.NAME.upper()
    configured = cfg.TRAINER[node].get("PREC") if node in cfg.TRAINER else None
    return {"configured": configured, "used": getattr(trainer, "precision", configured)}


class RunRecord:
    """One segment of ``<output dir>/provenance.json``: :meth:`start`, then :meth:`finish` or :meth:`fail`.

    As a context manager: ``start`` on entry; on an exception ``fail`` (the exception propagates); on a normal
    exit ``finish`` unless it was already called (with the trainer, for precision and metrics).
    """

    def __init__(self, cfg, argv=None):
        self.cfg = cfg
        self.argv = list(sys.argv if argv is None else argv)
        self.path = osp.join(cfg.OUTPUT_DIR, FILE_NAME)
        self.segment = None
        self.index = None
        self._t0 = None

    # -- writing ------------------------------------------------------------------------------------------
    def _save(self):
        record = read_record(self.cfg.OUTPUT_DIR)
        if record is None and osp.exists(self.path):  # never overwrite what we cannot read: keep it aside
            aside = f"{self.path}.unreadable-{time.strftime('%Y-%m-%d-%H-%M-%S')}"
            os.replace(self.path, aside)
            print(f"Warning: {self.path} could not be read as a provenance record; kept as {aside}")
        record = record or {"format": FORMAT, "segments": []}
        segments = record["segments"]
        if self.index is None or self.index >= len(segments):
            self.index = len(segments)
            segments.append(self.segment)
        else:
            segments[self.index] = self.segment
        _write(self.path, record)

    def start(self):
        os.makedirs(self.cfg.OUTPUT_DIR, exist_ok=True)
        self._t0 = time.time()
        self.segment = {
            "status": "running", "pid": os.getpid(), "host": socket.gethostname(), "log": _current_log(),
            "start_time": _now(), "end_time": None, "wall_time_s": None,
            "command": self.argv, "python": sys.executable, "cwd": os.getcwd(), "git": git_info(),
            "versions": package_versions(),
            "device": device_info(self.cfg), "precision": None, "trainer": self.cfg.TRAINER.NAME,
            "dataset": self.cfg.DATASET.NAME, "seed": self.cfg.SEED,
            "start_epoch": None, "peak_memory_mb": None, "metrics": None, "error": None,
            "config": json.loads(json.dumps(self.cfg, default=str)),
        }
        self._save()
        return self

    def _end(self, status, trainer=None, error=None):
        self.segment.update(status=status, end_time=_now(), wall_time_s=round(time.time() - self._t0, 1),
                            peak_memory_mb=peak_memory_mb(), error=error)
        if trainer is not None:
            self.segment["precision"] = _precision(self.cfg, trainer)
            self.segment["start_epoch"] = getattr(trainer, "start_epoch", None)
            results = getattr(trainer, "last_test_result", None)
            if results:
                self.segment["metrics"] = {k: (float(v) if isinstance(v, (int, float)) else v)
                                           for k, v in results.items()}
        self._save()

    def finish(self, trainer=None):
        self._end("finished", trainer)

    def fail(self, exc, trainer=None):
        code = exc.code if isinstance(exc, SystemExit) else None
        if code == 128 + signal.SIGTERM:  # dassl.utils.signals' SIGTERM handler
            self._end("terminated", trainer, error="SIGTERM")
            return
        if isinstance(exc, Preempted):  # a checkpoint written on SIGUSR1
            self._end("preempted", trainer, error=exc.message)
            return
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        self._end(status, trainer, error=f"{type(exc).__name__}: {exc}")

    # -- context manager ----------------------------------------------------------------------------------
    trainer = None  # set by the caller once built, so a failure still records precision and start epoch

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        if exc is not None:
            self.fail(exc, self.trainer)
        elif self.segment["status"] == "running":
            self.finish(self.trainer)
        return False


def segment_state(segment, host=None):
    """``finished`` / ``failed`` / ``interrupted`` / ``terminated`` as recorded; for a ``running`` segment, ``running`` when its
    process is alive on this host, ``died`` when it is not, ``running?`` when it ran on another host."""
    status = segment.get("status")
    if status != "running":
        return status
    host = host or socket.gethostname()
    if segment.get("host") != host:
        return "running?"
    pid = segment.get("pid")
    return "running" if isinstance(pid, int) and pid_alive(pid) else "died"


def find_segment(record, log_name):
    """The last segment of ``record`` that wrote ``log_name`` (None if there is none)."""
    if not record:
        return None
    matches = [s for s in record["segments"] if isinstance(s, dict) and s.get("log") == log_name]
    return matches[-1] if matches else None
