"""An ImageNet-size split JSON (1.28 M train entries, fake paths) loads in seconds, not minutes.

Measures (printed; run ``pytest -s tests/test_datasets_speed.py`` to see them):
reading the JSON into Datum lists; building a dataset from it with a 16-shot cache (first run:
sample + write the cache; second run: read the cache); the bulk existence check of all 1.34 M
paths (one directory listing per folder, no per-file stat); and the checker on that root.
"""
import json
import os
import os.path as osp
import time

import pytest

from dataset_fixtures import build

N_CLASSES, N_TRAIN, N_VAL, N_TEST = 1000, 1281, 10, 50  # 1,281,000 train entries


@pytest.fixture(scope="module")
def big_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    ddir = root / "food-101"
    image_dir = ddir / "images"
    for c in range(N_CLASSES):
        os.makedirs(image_dir / f"n{c:08d}")  # folders exist, images do not
    split = {"train": [], "val": [], "test": []}
    for c in range(N_CLASSES):
        wnid, name = f"n{c:08d}", f"class number {c}"
        split["train"] += [[f"{wnid}/{wnid}_{i}.JPEG", c, name] for i in range(N_TRAIN)]
        split["val"] += [[f"{wnid}/val_{i}.JPEG", c, name] for i in range(N_VAL)]
        split["test"] += [[f"{wnid}/test_{i}.JPEG", c, name] for i in range(N_TEST)]
    with open(ddir / "split_zhou_Food101.json", "w") as f:
        f.write(json.dumps(split))  # dumps uses the C encoder (json.dump does not)
    return root


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def test_imagenet_size_split_loads_in_seconds(big_root, capsys):
    from datasets.check import check_root
    from datasets.common import FileIndex, read_split

    split_path = osp.join(big_root, "food-101", "split_zhou_Food101.json")
    image_dir = osp.join(big_root, "food-101", "images")
    (train, val, test), t_read = _timed(lambda: read_split(split_path, image_dir))
    assert len(train) == N_CLASSES * N_TRAIN

    ds, t_first = _timed(lambda: build(big_root, "Food101", num_shots=16, seed=1, CHECK_FILES=False))
    assert len(ds.train_x) == 16 * N_CLASSES and ds.num_classes == N_CLASSES
    ds2, t_cached = _timed(lambda: build(big_root, "Food101", num_shots=16, seed=1, CHECK_FILES=False))
    assert [d.impath for d in ds2.train_x] == [d.impath for d in ds.train_x]

    all_paths = [d.impath for d in train + val + test]
    missing, t_verify = _timed(lambda: FileIndex().missing(all_paths))
    assert len(missing) == len(all_paths)  # fake paths: every one is reported, none is stat'ed

    (report,), t_check = _timed(lambda: check_root(str(big_root), ["Food101"]))
    assert report.n_missing == len(all_paths) and report.status == "incomplete"

    with capsys.disabled():
        print(f"\n[1.28M split] read_split {t_read:.2f}s | build 16-shot (sample+cache) {t_first:.2f}s"
              f" | build from cache {t_cached:.2f}s | bulk existence check of {len(all_paths):,} "
              f"paths {t_verify:.2f}s | checker {t_check:.2f}s")
    # seconds, not minutes (generous bounds for a loaded 2-core CI machine)
    assert t_read < 30 and t_first < 60 and t_cached < 60 and t_verify < 30 and t_check < 60
