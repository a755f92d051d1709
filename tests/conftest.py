"""Shared test fixtures: config builders and a toy dataset written only against the Dassl API."""
import os
import os.path as osp
import sys

import numpy as np
import pytest
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

os.environ.setdefault("CLIP_WEIGHTS_DIR", osp.join(REPO, "tests", "_no_weights_here"))


def write_image(path, color, size=16, seed=0):
    """A ``size x size`` RGB JPEG: a solid colour plus mild noise."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(color, dtype=np.float32)[None, None] + rng.normal(0, 12, (size, size, 3)), 0, 255)
    Image.fromarray(arr.astype(np.uint8)).save(path)


COLORS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30)}


@pytest.fixture
def make_cfg():
    """``make_cfg(**overrides)`` -> a fresh (unfrozen) project config with test-friendly defaults."""
    from dassl.config import get_cfg_default
    from trainers.config import extend_cfg

    def _make(opts=()):
        cfg = get_cfg_default()
        extend_cfg(cfg)
        cfg.DATALOADER.NUM_WORKERS = 0
        cfg.USE_CUDA = False
        if opts:
            cfg.merge_from_list(list(opts))
        return cfg

    return _make
