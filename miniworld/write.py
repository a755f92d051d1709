"""Render the mini-world into CoOp's layout: ``<root>/<variant>/images/<class>/<split>_<i>.png`` and
``<root>/<variant>/split_zhou_<Name>.json``.

    python -m miniworld.write --root DATA [--variant miniworld ...] [--counts train=24,val=8,test=50] [--force]

Variants (same 40 classes, one rendering style each; none of these styles occurs in pretraining):

* ``miniworld`` (dataset ``MiniWorld``): the downstream domain, ``world.DOWNSTREAM_STYLE``;
* ``miniworld_clutter``, ``miniworld_fog``, ``miniworld_noise``, ``miniworld_texture`` (``MiniWorldClutter`` ...):
  harder held-out styles, domain-shift / cross-dataset targets.

Cached: a tree whose ``.complete`` stamp matches (same renderer source, variant and counts) and whose images
all verify (listed in the split file, complete PNG files) is left as is, so a second call costs almost nothing;
anything else, or any tree with ``--force``, is re-rendered into a fresh folder that replaces the old one.
Deterministic: seeds depend only on the variant, the split and the chunk.
"""
import argparse
import hashlib
import json
import os
import os.path as osp
import shutil
import sys
import time

import numpy as np
from PIL import Image

from . import world as W

# variant -> (dataset class name, style, seed)
VARIANTS = {
    "miniworld": ("MiniWorld", W.DOWNSTREAM_STYLE, 101),
    "miniworld_clutter": ("MiniWorldClutter", "cluttered photo", 105),
    "miniworld_fog": ("MiniWorldFog", "foggy photo", 102),
    "miniworld_noise": ("MiniWorldNoise", "noisy photo", 103),
    "miniworld_texture": ("MiniWorldTexture", "textured photo", 104),
}
DEFAULT_COUNTS = {"train": 24, "val": 8, "test": 50}  # images per class
SPLITS = ("train", "val", "test")
IMAGE_SUBDIR = "images"
STAMP = ".complete"
CHUNK = 256


def split_file(variant: str) -> str:
    return f"split_zhou_{VARIANTS[variant][0]}.json"


def renderer_digest() -> str:
    """sha256 of the world's source: a changed renderer invalidates rendered trees."""
    with open(W.__file__, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def stamp_of(variant: str, counts: dict) -> dict:
    return {"variant": variant, "counts": {s: int(counts[s]) for s in SPLITS}, "renderer": renderer_digest(),
            "classes": W.class_names()}


PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the last chunk of every complete PNG file


def verify_tree(dataset_dir: str, variant: str) -> str:
    """Why the rendered tree is not usable ("" when every image of its split file is there and complete).

    Cheap: reads the split file and the last 12 bytes of each image (a truncated PNG lacks its end chunk).
    """
    try:
        with open(osp.join(dataset_dir, split_file(variant))) as f:
            split = json.load(f)
        entries = [e[0] for s in SPLITS for e in split[s]]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
        return f"split file {split_file(variant)} missing or unreadable ({type(e).__name__})"
    bad = []
    for rel in entries:
        path = osp.join(dataset_dir, IMAGE_SUBDIR, rel)
        try:
            with open(path, "rb") as f:
                f.seek(-len(PNG_END), os.SEEK_END)
                ok = f.read() == PNG_END
        except OSError:
            ok = False
        if not ok:
            bad.append(rel)
    if bad:
        return f"{len(bad)} of {len(entries)} images missing or truncated (e.g. {bad[0]})"
    return ""


def is_current(root: str, variant: str = "miniworld", counts: dict = None) -> bool:
    """Whether ``root/variant`` holds this renderer's tree for ``counts``, complete (see :func:`verify_tree`)."""
    return _stale_reason(root, variant, counts or DEFAULT_COUNTS) == ""


def _stale_reason(root, variant, counts):
    path = osp.join(root, variant, STAMP)
    if not osp.isfile(path):
        return "not rendered yet"
    try:
        with open(path) as f:
            if json.load(f) != stamp_of(variant, counts):
                return "rendered with other counts or another renderer"
    except (OSError, ValueError):
        return "unreadable stamp"
    return verify_tree(osp.join(root, variant), variant)


def write_miniworld(root: str, variant: str = "miniworld", counts: dict = None, log=print, force=False) -> str:
    """Render ``variant`` under ``root`` unless an identical, complete tree is there (or ``force``);
    return the dataset folder."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown mini-world variant '{variant}' (known: {list(VARIANTS)})")
    counts = dict(DEFAULT_COUNTS, **(counts or {}))
    dataset_dir = osp.join(osp.abspath(root), variant)
    stale = "--force" if force else _stale_reason(root, variant, counts)
    if not stale:
        log(f"{dataset_dir}: up to date (cached; every image verified)")
        return dataset_dir
    if osp.isdir(dataset_dir):
        log(f"{dataset_dir}: {stale}; rendering it again")
    _, style, seed = VARIANTS[variant]
    names = W.class_names()
    tmp = f"{dataset_dir}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.time()
    total = sum(counts.values()) * len(names)
    done = 0
    split = {}
    for si, s in enumerate(SPLITS):
        labels = np.repeat(np.arange(len(names)), counts[s])
        index = np.concatenate([np.arange(counts[s])] * len(names)) if counts[s] else np.zeros(0, int)
        entries = []
        for c, start in enumerate(range(0, len(labels), CHUNK)):
            lab = labels[start:start + CHUNK]
            images = W.class_images([seed, si, c], lab.tolist(), style)
            for img, y, i in zip(images, lab, index[start:start + CHUNK]):
                rel = f"{names[y].replace(' ', '_')}/{s}_{i:03d}.png"
                path = osp.join(tmp, IMAGE_SUBDIR, rel)
                os.makedirs(osp.dirname(path), exist_ok=True)
                Image.fromarray(img).save(path, compress_level=1)
                entries.append([rel, int(y), names[y]])
            done += len(lab)
            log(f"  {variant}: {done}/{total} images ({time.time() - t0:.0f} s)")
        split[s] = entries
    with open(osp.join(tmp, split_file(variant)), "w") as f:
        json.dump(split, f)
    with open(osp.join(tmp, STAMP), "w") as f:
        json.dump(stamp_of(variant, counts), f)
    if osp.isdir(dataset_dir):
        shutil.rmtree(dataset_dir)
    os.replace(tmp, dataset_dir)
    log(f"{dataset_dir}: {total} images of {len(names)} classes in the '{style}' style "
        f"({time.time() - t0:.0f} s)")
    return dataset_dir


def parse_counts(text: str) -> dict:
    out = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in SPLITS or not value.isdigit():
            raise argparse.ArgumentTypeError(f"--counts takes split=N pairs ({', '.join(SPLITS)}), got '{part}'")
        out[key] = int(value)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="Render the mini-world in CoOp's layout (cached).")
    p.add_argument("--root", required=True, help="data root (DATA): writes <root>/<variant>/")
    p.add_argument("--variant", nargs="+", default=["miniworld"], choices=list(VARIANTS))
    p.add_argument("--counts", type=parse_counts, default={}, help="images per class, e.g. train=24,val=8,test=50")
    p.add_argument("--force", action="store_true", help="render again even when the cached tree verifies")
    args = p.parse_args(argv)
    for v in args.variant:
        write_miniworld(args.root, v, args.counts, log=lambda s: print(s, flush=True), force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
