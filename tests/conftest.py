"""Shared test fixtures: config builders and a toy dataset written only against the Dassl API."""
import os
import os.path as osp
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

os.environ.setdefault("DASSL_ENV_INFO", "short")  # torch's full report takes seconds per train.py run
os.environ.setdefault("CLIP_WEIGHTS_DIR", osp.join(REPO, "tests", "_no_weights_here"))

from datasets.toy import COLORS as ALL_COLORS, write_image  # noqa: E402,F401

COLORS = dict(list(ALL_COLORS.items())[:4])  # red, green, blue, yellow


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
