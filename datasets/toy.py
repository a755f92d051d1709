"""Write tiny synthetic image trees in CoOp layouts (for tests and the quick demo; no download).

Each class is a colour; every image is that colour plus noise, so zero-shot CLIP with random weights
sits near chance while a trained prompt/linear head can learn it.
"""
import json
import os
import os.path as osp

import numpy as np
from PIL import Image

COLORS = {
    "red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
    "purple": (140, 40, 180), "orange": (240, 140, 20), "cyan": (30, 210, 220), "pink": (240, 130, 180),
}


def write_image(path, color, size=16, seed=0):
    """A ``size x size`` RGB JPEG: ``color`` plus Gaussian noise (std 12)."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = np.array(color, dtype=np.float32)[None, None] + rng.normal(0, 12, (size, size, 3))
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path)


def write_coop_tree(root, dataset_dir="oxford_pets", split_file="split_zhou_OxfordPets.json",
                    image_subdir="images", classnames=None, counts=None):
    """Write ``root/dataset_dir/image_subdir/*.jpg`` and the CoOp split JSON; return the split dict.

    ``counts`` = images per class and split, default ``{"train": 4, "val": 1, "test": 3}``. The JSON has
    CoOp's format: ``{"train": [[relative path, label, classname], ...], "val": ..., "test": ...}``.
    Existing images are kept (a second call is cheap).
    """
    classnames = classnames or list(COLORS)[:4]
    counts = counts or {"train": 4, "val": 1, "test": 3}
    base = osp.join(root, dataset_dir)
    split = {s: [] for s in counts}
    for label, name in enumerate(classnames):
        color = COLORS[name] if name in COLORS else tuple(int(c) for c in np.random.default_rng(label).integers(0, 255, 3))
        for s, n in counts.items():
            for i in range(n):
                rel = f"{name}_{s}_{i}.jpg"
                path = osp.join(base, image_subdir, rel)
                if not osp.exists(path):
                    write_image(path, color, seed=label * 1000 + hash(s) % 97 * 10 + i)
                split[s].append([rel, label, name])
    with open(osp.join(base, split_file), "w") as f:
        json.dump(split, f)
    return split
