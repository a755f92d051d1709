"""Tee ``sys.stdout`` into ``log.txt`` (a timestamped name when it already exists)."""
import os
import os.path as osp
import sys
import time

__all__ = ["Logger", "setup_logger"]


class Logger:
    """Write to the console and to ``fpath``; ``flush`` also fsyncs the file."""

    def __init__(self, fpath=None):
        self.console = sys.stdout
        self.file = None
        if fpath is not None:
            os.makedirs(osp.dirname(osp.abspath(fpath)), exist_ok=True)
            self.file = open(fpath, "w")

    def __del__(self):
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self.close()

    def write(self, msg):
        self.console.write(msg)
        if self.file is not None:
            self.file.write(msg)

    def flush(self):
        self.console.flush()
        if self.file is not None:
            self.file.flush()
            os.fsync(self.file.fileno())

    def isatty(self):
        return False

    def close(self):
        # Unlike upstream, the console stream is left open: closing sys.__stdout__ breaks later prints.
        if self.file is not None and not self.file.closed:
            self.file.close()


def setup_logger(output=None):
    """Tee stdout to ``output`` (a ``.txt``/``.log`` file) or ``output/log.txt``; never overwrite a log."""
    if output is None:
        return
    if output.endswith(".txt") or output.endswith(".log"):
        fpath = output
    else:
        fpath = osp.join(output, "log.txt")
    if osp.exists(fpath):
        fpath += time.strftime("-%Y-%m-%d-%H-%M-%S")
    # Unwrap a previous tee so two runs in one process do not nest.
    if isinstance(sys.stdout, Logger):
        sys.stdout.close()
        sys.stdout = sys.stdout.console
    sys.stdout = Logger(fpath)
