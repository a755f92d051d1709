"""Run ``train.py`` many times fast: one process imports it once, then forks a child per run.

Used by the failure-injection tests, which start dozens of short runs: a fresh interpreter costs seconds of
imports per run, a fork a few milliseconds. The server never runs a torch operation itself, so forking is safe.

Protocol (stdin / stdout, one JSON object per line): ``{"argv": [...], "env": {...}, "out": path}`` ->
``{"exit": code or null, "signal": number or null}``; the child's stdout and stderr go to ``out``.
"""
import json
import os
import sys
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.chdir(REPO)

import train  # noqa: E402


def child(request):
    fd = os.open(request["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.environ.update(request.get("env", {}))
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    sys.__stdout__, sys.__stderr__ = sys.stdout, sys.stderr
    code = 1
    try:
        import torch

        torch.set_num_threads(1)
        code = train.cli(request["argv"])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main():
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request)
        _, status = os.waitpid(pid, 0)
        reply = {"exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                 "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
