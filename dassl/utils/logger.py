"""Tee ``sys.stdout`` into ``log.txt`` (a timestamped name when it already exists)."""
import os
import os.path as osp
import sys
import time

__all__ = ["Logger", "setup_logger", "new_log_path"]


class Logger:
    """Write to the console and to ``fpath``; ``flush`` also fsyncs the file.

    Every complete line is handed to the operating system at once, so a run killed by SIGTERM or SIGKILL
    (a Slurm time limit, a preemption) leaves a log that ends at the last line it printed.
    """

    def __init__(self, fpath=None):
        self.console = sys.stdout
        self.file = None
        if fpath is not None:
            os.makedirs(osp.dirname(osp.abspath(fpath)), exist_ok=True)
            self.file = open(fpath, "a")

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def write(self, msg):
        self.console.write(msg)
        if self.file is not None and not self.file.closed:
            self.file.write(msg)
            if "\n" in msg:
                self.file.flush()

    def flush(self):
        self.console.flush()
        if self.file is not None and not self.file.closed:
            self.file.flush()
            os.fsync(self.file.fileno())

    def isatty(self):
        return False

    def close(self):
        # Unlike upstream, the console stream is left open: closing sys.__stdout__ breaks later prints.
        if self.file is not None and not self.file.closed:
            self.file.close()


def new_log_path(fpath):
    """Create and return ``fpath``, or ``fpath-<time stamp>`` (Dassl's ``-%Y-%m-%d-%H-%M-%S``) when it exists.

    The file is created exclusively, so two runs never share a log: when the stamp of this second is taken,
    the next free second is used (the name stays in Dassl's format and sorts by start order).
    """
    os.makedirs(osp.dirname(osp.abspath(fpath)), exist_ok=True)
    candidates = [fpath] if not osp.exists(fpath) else []
    now = time.time()
    candidates += [fpath + time.strftime("-%Y-%m-%d-%H-%M-%S", time.localtime(now + k)) for k in range(3600)]
    for path in candidates:
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free log name next to {fpath} (3600 logs started in the same hour?)")


def setup_logger(output=None):
    """Tee stdout to ``output`` (a ``.txt``/``.log`` file) or ``output/log.txt``; never overwrite a log."""
    if output is None:
        return
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = osp.join(output, "log.txt")
    fpath = new_log_path(fpath)
    # Unwrap a previous tee so two runs in one process do not nest.
    if isinstance(sys.stdout, Logger):
        sys.stdout.close()
        sys.stdout = sys.stdout.console
    sys.stdout = Logger(fpath)
