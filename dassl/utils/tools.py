"""Small file-system and misc helpers with Dassl's names and behaviour."""
import difflib
import errno
import json
import os
import os.path as osp
import random
import sys
import time
import warnings

import numpy as np
import torch
from PIL import Image

__all__ = [
    "mkdir_if_missing", "check_isfile", "read_json", "write_json", "set_random_seed",
    "download_url", "read_image", "collect_env_info", "listdir_nohidden",
    "get_most_similar_str_to_a_from_b", "check_availability", "tolist_if_not",
]


def mkdir_if_missing(dirname):
    """Create ``dirname`` (and parents) if it does not exist; tolerate races."""
    if not osp.exists(dirname):
        try:
            os.makedirs(dirname)
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise


def check_isfile(fpath):
    """``os.path.isfile`` that also warns when the file is missing."""
    isfile = osp.isfile(fpath)
    if not isfile:
        warnings.warn(f'No file found at "{fpath}"')
    return isfile


def read_json(fpath):
    with open(fpath, "r") as f:
        return json.load(f)


def write_json(obj, fpath):
    """Write ``obj`` as indented JSON, creating the parent folder; atomic (temp file + rename)."""
    mkdir_if_missing(osp.dirname(osp.abspath(fpath)))
    tmp = f"{fpath}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=4, separators=(",", ": "))
    os.replace(tmp, fpath)


def set_random_seed(seed):
    """Seed Python ``random``, NumPy and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def download_url(url, dst):
    """Download ``url`` to ``dst`` (only used when a user explicitly asks for a download)."""
    from urllib import request

    mkdir_if_missing(osp.dirname(osp.abspath(dst)))
    print(f'* url="{url}"')
    print(f'* destination="{dst}"')
    request.urlretrieve(url, dst)
    sys.stdout.write("\n")


def read_image(path):
    """Read an image as an RGB ``PIL.Image``; the error names the file."""
    if not osp.exists(path):
        raise IOError(f'No file exists at "{path}"')
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except Exception as e:  # PIL raises many kinds
        raise IOError(f'Cannot read image "{path}": {e}. Re-download or remove this file '
                      "(python -m datasets.check --root DATA --open lists every unreadable image; "
                      "python -m miniworld.write --root DATA --force re-renders a mini-world tree)") from e


def collect_env_info():
    """torch's environment report plus the Pillow version.

    torch's report runs ``pip list``, ``nvidia-smi`` etc. (seconds); with ``DASSL_ENV_INFO=short`` in the
    environment only the versions are reported (tests and the demo use this).
    """
    import platform

    import PIL

    if os.environ.get("DASSL_ENV_INFO", "") == "short":
        env_str = (f"PyTorch version: {torch.__version__}\nPython version: {platform.python_version()}\n"
                   f"Is CUDA available: {torch.cuda.is_available()}")
    else:
        from torch.utils.collect_env import get_pretty_env_info

        env_str = get_pretty_env_info()
    env_str += f"\n        Pillow ({PIL.__version__})"
    return env_str


def listdir_nohidden(path, sort=False):
    """``os.listdir`` without hidden entries; sorted only when ``sort=True`` (as Dassl)."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    if sort:
        items.sort()
    return items


def get_most_similar_str_to_a_from_b(a, b):
    """Return the string in ``b`` most similar to ``a`` (difflib ratio)."""
    highest_sim = 0
    chosen = None
    for candidate in b:
        sim = difflib.SequenceMatcher(None, a, candidate).ratio()
        if sim >= highest_sim:
            highest_sim = sim
            chosen = candidate
    return chosen


def check_availability(requested, available):
    """Raise ``ValueError`` naming the available choices and the closest one if ``requested`` is unknown."""
    if requested not in available:
        psb_ans = get_most_similar_str_to_a_from_b(requested, available)
        raise ValueError(
            "The requested one is expected "
            f"to belong to {sorted(available)}, but got [{requested}] "
            f"(do you mean [{psb_ans}]?)"
        )


def tolist_if_not(x):
    if not isinstance(x, list):
        x = [x]
    return x


def format_elapsed(seconds):
    """``str(timedelta)`` of the rounded seconds, e.g. ``0:12:34``."""
    import datetime

    return str(datetime.timedelta(seconds=round(seconds)))


def timestamp():
    return time.strftime("%Y-%m-%d-%H-%M-%S")
