"""Class lists shipped with the package (``coop_meta.json``), loaded once, cwd-independent."""
import functools
import json
import os.path as osp

META_FILE = osp.join(osp.dirname(osp.abspath(__file__)), "coop_meta.json")


@functools.lru_cache(maxsize=1)
def coop_meta():
    """The parsed ``datasets/coop_meta.json`` (see its ``_about`` entry)."""
    with open(META_FILE, "r") as f:
        return json.load(f)
