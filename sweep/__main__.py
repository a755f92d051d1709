"""Run a sweep on this machine: every local GPU (or N CPU jobs), one task per device at a time.

    DATA=/path/to/datasets python -m sweep METHOD PROTOCOL [--gpus 0,1,2,3 | --jobs N]
        [--datasets D ...] [--seeds S ...] [--shots K ...] [--div 10.0] [--cfg CFG] [KEY VALUE ...]

The task list, the skip / resume rules and the output tree are those of the Slurm arrays
(``scripts/slurm/sweep.sh``, which runs single tasks with ``--task I``). One line per task event (running /
done / failed, with an ETA from the finished tasks); per-task output in ``<output root>/sweep_logs/``; the
results table (``extract_log.py``) at the end. Exit status: 0 every task done, 1 some task failed (named at the
end; run the same command again to retry only those), 2 bad arguments; ``--task``: the task's own status
(3: stopped on SIGUSR1 after writing a checkpoint, rerun to resume).
"""
import argparse
import datetime
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

from .tasks import BENCHMARK, PROTOCOLS, REPO, METHODS, Sweep, SweepError


def build_parser():
    p = argparse.ArgumentParser(prog="python -m sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("method", help=f"one of {', '.join(METHODS)}")
    p.add_argument("protocol", help=f"one of {', '.join(PROTOCOLS)}")
    p.add_argument("--datasets", nargs="+", default=None,
                   help="datasets (targets for xd); default: the 11 benchmark datasets (xd: all but the source)")
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--shots", nargs="+", type=int, default=[1, 2, 4, 8, 16], help="fewshot only")
    p.add_argument("--source", default="imagenet", help="xd only: the source dataset")
    p.add_argument("--div", default="10.0", help="promptot only: lambda (names the root output<DIV>)")
    p.add_argument("--cfg", default="", help="promptot only: the config (default: the protocol's)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--gpus", default=None, help="comma-separated GPU ids, one task per GPU at a time")
    g.add_argument("--jobs", type=int, default=None, help="N tasks at a time on CPU (default 1)")
    p.add_argument("--phase", type=int, default=None, help="only this phase (xd: 0 source training, 1 tests)")
    p.add_argument("--count", action="store_true", help="print the number of tasks (of --phase) and exit")
    p.add_argument("--list", action="store_true", help="print the tasks and their commands and exit")
    p.add_argument("--print-root", action="store_true", help="print the output root and exit")
    p.add_argument("--print-table-dir", action="store_true", help="print where the results table goes and exit")
    p.add_argument("--task", type=int, default=None, help="run task I (0-based, of --phase) in the foreground")
    p.add_argument("--no-table", action="store_true", help="do not run extract_log.py at the end")
    p.add_argument("overrides", nargs="*", help="KEY VALUE config overrides for every run (after the options)")
    return p


KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def parse_args(argv):
    """Options anywhere; the trailing ``KEY VALUE`` overrides start at the first upper-case dotted key."""
    argv = list(sys.argv[1:] if argv is None else argv)
    start = next((i for i, a in enumerate(argv) if KEY_RE.match(a)), len(argv))
    args = build_parser().parse_args(argv[:start])
    args.overrides = list(args.overrides or []) + argv[start:]
    return args


def make_sweep(args):
    datasets = args.datasets
    if datasets is None:
        datasets = [d for d in BENCHMARK if not (args.protocol == "xd" and d == args.source)]
    return Sweep(args.method, args.protocol, datasets, args.seeds, shots=args.shots, source=args.source,
                 div=args.div, cfg=args.cfg, overrides=list(args.overrides or []))


def script_env(task):
    env = dict(os.environ, PY=os.environ.get("PY", sys.executable), PYTHONUNBUFFERED="1")
    env.update(task.env)
    return env


def _descendants(pid):
    """PIDs of every process below ``pid`` (Linux /proc)."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _train_processes(pid):
    found = []
    for p in _descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"train.py") for a in argv[:3]):
            found.append(p)
    return found


def run_task(task):
    """Run one task in the foreground; SIGUSR1 / SIGTERM are passed to its ``train.py`` (the scripts between
    would die of them). Returns the exit status of the first command that fails, else 0."""
    current = {}

    def forward(signum, frame):
        proc = current.get("proc")
        if proc is not None:
            for pid in _train_processes(proc.pid):
                try:
                    os.kill(pid, signum)
                except ProcessLookupError:
                    pass

    signal.signal(signal.SIGUSR1, forward)
    signal.signal(signal.SIGTERM, forward)
    for cmd in task.commands:
        print("+ " + " ".join(cmd), flush=True)
        current["proc"] = subprocess.Popen(cmd, cwd=REPO, env=script_env(task))
        rc = current["proc"].wait()
        if rc:
            return rc
    return 0


def table_dir(root):
    """Where the results table goes: ``output_csv/<root name>`` next to the output root."""
    return os.path.join(os.path.dirname(root), "output_csv", os.path.basename(root))


def fmt(seconds):
    return str(datetime.timedelta(seconds=int(seconds)))


def run_local(sweep, tasks, slots, log_dir):
    """Run ``tasks`` phase by phase, one per slot at a time; print one line per event; return the failures."""
    os.makedirs(log_dir, exist_ok=True)
    total, finished, durations, failed = len(tasks), 0, [], []
    t_start = time.time()
    for phase in sorted({t.phase for t in tasks}):
        todo = queue.Queue()
        for i, t in enumerate(tasks):
            if t.phase == phase:
                todo.put((i, t))
        events = queue.Queue()

        def worker(slot):
            while True:
                try:
                    i, t = todo.get_nowait()
                except queue.Empty:
                    return
                env = dict(t.env)
                if slot is not None:
                    env["CUDA_VISIBLE_DEVICES"] = slot
                if "OMP_NUM_THREADS" not in os.environ:  # share the CPU cores between the tasks
                    env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // len(slots)))
                events.put(("running", i, t, slot, None))
                t0 = time.time()
                rc = 0
                with open(os.path.join(log_dir, f"task{i:04d}.log"), "w") as log:
                    for cmd in t.commands:
                        log.write("+ " + " ".join(cmd) + "\n")
                        log.flush()
                        env_full = script_env(t)
                        env_full.update(env)
                        rc = subprocess.call(cmd, cwd=REPO, env=env_full, stdout=log, stderr=subprocess.STDOUT)
                        if rc:
                            break
                events.put(("done" if rc == 0 else f"failed (exit {rc})", i, t, slot, time.time() - t0))

        threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in slots]
        for th in threads:
            th.start()
        running = 0
        while any(th.is_alive() for th in threads) or not events.empty():
            try:
                state, i, t, slot, took = events.get(timeout=0.5)
            except queue.Empty:
                continue
            where = f" on GPU {slot}" if slot is not None else ""
            if state == "running":
                running += 1
                print(f"[{finished}/{total}] running  task {i} ({t.name}){where}", flush=True)
                continue
            running -= 1
            finished += 1
            durations.append(took)
            if state != "done":
                failed.append((i, t))
            left = total - finished
            eta = sum(durations) / len(durations) * left / max(1, len(slots))
            print(f"[{finished}/{total}] {state:<8} task {i} ({t.name}) in {fmt(took)}; {running} running, "
                  f"{len(failed)} failed, ETA {fmt(eta)}  (log: {os.path.join(log_dir, f'task{i:04d}.log')})",
                  flush=True)
    print(f"Sweep: {total - len(failed)}/{total} tasks done in {fmt(time.time() - t_start)}", flush=True)
    return failed


def main(argv=None):
    args = parse_args(argv)
    try:
        sweep = make_sweep(args)
    except SweepError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    tasks = sweep.tasks() if args.phase is None else sweep.phase_tasks(args.phase)
    root = sweep.output_root(os.environ.get("OUTPUT"))
    if args.print_root or args.print_table_dir:
        print(root if args.print_root else table_dir(root))
        return 0
    if args.count:
        print(len(tasks))
        return 0
    if args.list:
        for i, t in enumerate(tasks):
            env = " ".join(f"{k}={v}" for k, v in t.env.items())
            print(f"{i}\tphase {t.phase}\t{t.name}\t" + " && ".join(
                (env + " " if env else "") + " ".join(c) for c in t.commands))
        return 0
    if not os.environ.get("DATA"):
        print("Error: DATA is not set: point it at the folder holding the datasets, e.g. "
              "DATA=/path/to/datasets python -m sweep ...", file=sys.stderr)
        return 2
    if args.task is not None:
        if not 0 <= args.task < len(tasks):
            print(f"Error: --task {args.task} is out of range (this sweep has {len(tasks)} tasks"
                  + (f" in phase {args.phase}" if args.phase is not None else "") + ")", file=sys.stderr)
            return 2
        print(f"Task {args.task}: {tasks[args.task].name}", flush=True)
        return run_task(tasks[args.task])
    if args.gpus is not None:
        slots = [g.strip() for g in args.gpus.split(",") if g.strip()]
        if not slots:
            print("Error: --gpus takes comma-separated GPU ids, e.g. --gpus 0,1", file=sys.stderr)
            return 2
    else:
        slots = [None] * max(1, args.jobs or 1)
    print(f"Sweep {sweep.method} {sweep.protocol}: {len(tasks)} tasks on "
          + (f"GPUs {','.join(slots)}" if args.gpus is not None else f"{len(slots)} CPU job(s)")
          + f"; results under {root}", flush=True)
    failed = run_local(sweep, tasks, slots, os.path.join(root, "sweep_logs"))
    if not args.no_table and os.path.isdir(root):
        subprocess.call([sys.executable, os.path.join(REPO, "extract_log.py"), root, "--output-path",
                         table_dir(root)], cwd=REPO)
    if failed:
        print("Failed tasks (rerun the same command to retry them): "
              + ", ".join(f"{i} ({t.name})" for i, t in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
