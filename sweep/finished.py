"""When is a run finished? One rule, used by the bash scripts (skip or rerun), the sweeps and ``extract_log.py``.

A log counts as finished when its last ``=> result`` block holds a valid ``* accuracy: X%`` line (0 <= X <= 100)
and, for a training log (epoch lines, ``Finish training``, or a checkpoint message), that block comes after the
last ``Finish training`` (``Finished training`` in old logs). A directory counts as finished when one of its Dassl
logs (``log.txt``, ``log.txt-<time stamp>``) does. Anything else is rerun: a partial training resumes from its
last checkpoint.

    python sweep/finished.py train|eval DIR   # exit 0: finished, 1: not (the reason on stdout)

Standard library only, so any ``python3`` runs it in a fraction of a second.
"""
import os
import re
import sys

FINISH_LINES = ("Finish training", "Finished training")
TRAIN_MARKERS = ("No checkpoint found, train from scratch", "Found checkpoint at ")
EPOCH_RE = re.compile(r"^epoch \[(\d+)/(\d+)\]")  # new (space-separated) and old (tab-separated) train lines
RESULT_HEADER = "=> result"
ITEM_RE = re.compile(r"^\* (\w+): (.*)$")
PERCENT_RE = re.compile(r"^([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)%$")
LOG_NAME_RE = re.compile(r"^log\.txt(?:-(\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}))?$")


class NotFinished(Exception):
    """The log holds no final result; the message says why."""


def to_percent(value):
    m = PERCENT_RE.match((value or "").strip())
    return float(m.group(1)) if m else None


def result_items(lines, header):
    """``{key: raw value}`` of the ``* key: value`` lines after ``lines[header] == '=> result'``."""
    items = {}
    for line in lines[header + 1:]:
        m = ITEM_RE.match(line)
        if not m:
            break
        items.setdefault(m.group(1), m.group(2))
    return items


def valid_accuracy(items):
    accuracy = to_percent(items.get("accuracy"))
    return accuracy if accuracy is not None and 0.0 <= accuracy <= 100.0 else None


def locate_result(lines):
    """``(is_train, start, header)`` of a finished log (stripped lines); raise :class:`NotFinished` otherwise.

    ``start`` is the line of the last ``Finish training`` (0 for an evaluation log), ``header`` the line of the
    final ``=> result``.
    """
    finish = [i for i, line in enumerate(lines) if line in FINISH_LINES]
    is_train = bool(finish or any(EPOCH_RE.match(line) or line.startswith(TRAIN_MARKERS) for line in lines))
    if is_train and not finish:
        raise NotFinished("training log without 'Finish training' (truncated or still running)")
    start = finish[-1] if finish else 0
    headers = [i for i in range(start, len(lines)) if lines[i] == RESULT_HEADER]
    if not headers:
        raise NotFinished("no '=> result' block" + (" after 'Finish training'" if is_train else ""))
    if valid_accuracy(result_items(lines, headers[-1])) is None:
        raise NotFinished("last '=> result' block has no valid '* accuracy:' line (truncated or malformed)")
    return is_train, start, headers[-1]


def log_finished(text, kind="eval"):
    """``(finished, reason)`` for the text of one log; ``kind="train"`` also requires a training log."""
    try:
        is_train, _, _ = locate_result([line.strip() for line in text.splitlines()])
    except NotFinished as e:
        return False, str(e)
    if kind == "train" and not is_train:
        return False, "an evaluation log, not a training log"
    return True, "finished"


def run_finished(directory, kind="eval"):
    """``(finished, reason)`` for a run directory: finished when one of its Dassl logs is."""
    try:
        names = sorted(n for n in os.listdir(directory) if LOG_NAME_RE.match(n))
    except OSError:
        return False, "no run directory"
    if not names:
        return False, "no log"
    reasons = []
    for name in names:
        try:
            with open(os.path.join(directory, name), errors="replace") as f:
                ok, why = log_finished(f.read(), kind)
        except OSError as e:
            ok, why = False, str(e)
        if ok:
            return True, f"{name}: finished"
        reasons.append(f"{name}: {why}")
    return False, "; ".join(reasons)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("train", "eval"):
        print("usage: python sweep/finished.py train|eval DIR", file=sys.stderr)
        return 2
    ok, why = run_finished(argv[1], argv[0])
    print(why)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
