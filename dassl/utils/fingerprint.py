"""What determines a run's result, recorded in ``<OUTPUT_DIR>/fingerprint.json`` and checked on resume.

A run that resumes from a directory whose fingerprint differs (another seed, another dataset, another
``OPTIM.MAX_EPOCH`` ...) would silently mix two experiments; it stops instead and names the differences.
The fingerprint is every config value except those that only say where things are or how much is printed.
"""
import json
import os
import os.path as osp

__all__ = ["FINGERPRINT_NAME", "FingerprintMismatch", "fingerprint", "check_or_record"]

FINGERPRINT_NAME = "fingerprint.json"
# Keys that do not change the numbers a run produces.
IGNORED = ("OUTPUT_DIR", "RESUME", "DATASET.ROOT", "VERBOSE", "TRAIN.PRINT_FREQ", "TRAIN.CHECKPOINT_FREQ")


class FingerprintMismatch(ValueError):
    pass


def _flatten(node, prefix=""):
    out = {}
    for key in sorted(node.keys()):
        value = node[key]
        full = f"{prefix}{key}"
        if hasattr(value, "keys"):
            out.update(_flatten(value, full + "."))
        elif full not in IGNORED:
            out[full] = list(value) if isinstance(value, tuple) else value
    return out


def fingerprint(cfg):
    """``{"KEY.PATH": value}`` for every config value that can change the result."""
    return json.loads(json.dumps(_flatten(cfg), default=str))


def _describe(old, new, limit=6):
    keys = sorted(set(old) | set(new))
    diffs = [f"{k} {old.get(k, '<absent>')!r} -> {new.get(k, '<absent>')!r}" for k in keys if old.get(k) != new.get(k)]
    more = f" (+{len(diffs) - limit} more)" if len(diffs) > limit else ""
    return ", ".join(diffs[:limit]) + more


def check_or_record(cfg, directory, record=True):
    """Stop when ``directory`` holds a run with another fingerprint; else record this run's (if ``record``)."""
    path = osp.join(directory, FINGERPRINT_NAME)
    current = fingerprint(cfg)
    if osp.isfile(path):
        try:
            with open(path) as f:
                previous = json.load(f)
        except ValueError:
            previous = None  # torn by a kill while being written: rewrite it
        if previous is not None and previous != current:
            raise FingerprintMismatch(
                f"{directory} holds a run with other settings ({_describe(previous, current)}); resuming "
                f"would mix two experiments. Use another --output-dir, or delete {directory} to start fresh.")
        if previous is not None:
            return
    if record:
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(current, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
