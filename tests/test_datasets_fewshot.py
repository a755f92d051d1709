"""Few-shot picks checked against independent implementations.

* Dassl's documented algorithm (Dassl.pytorch's ``DatasetBase.generate_fewshot_dataset``), written here from its description and run
  on the raw split JSON: for a given split file and seed, the K-shot images must be identical (same
  images, same order) to what the dataset classes produce.
* The SOT-GLP ``stratified_proportional`` sampler against scikit-learn's StratifiedShuffleSplit
  (skipped when scikit-learn is not installed) and its proportionality properties.
"""
import json
import math
import os.path as osp
import random
from collections import Counter

import numpy as np
import pytest

from dataset_fixtures import build, make_tree, write_image, write_split_json


def dassl_fewshot_reference(entries, num_shots):
    """Dassl's generate_fewshot_dataset as documented, on ``[path, label, classname]`` entries.

    Group by label in order of first appearance; per label ``random.sample(items, K)`` when it has
    at least K items, else all of them; concatenate in label (first-appearance) order.
    """
    groups = {}
    for entry in entries:
        groups.setdefault(entry[1], []).append(entry)
    picked = []
    for items in groups.values():
        picked.extend(random.sample(items, num_shots) if len(items) >= num_shots else items)
    return picked


@pytest.fixture(scope="module")
def shuffled_root(tmp_path_factory):
    """A DTD tree whose split JSON interleaves classes and has unequal (and small) classes."""
    root = tmp_path_factory.mktemp("fs")
    t = make_tree("DescribableTextures", root)
    rng = random.Random(123)
    split = {"train": [], "val": [], "test": []}
    sizes = [3, 9, 14, 20, 7]  # class 0 has fewer images than K=4 / 16
    for label, n in enumerate(sizes):
        cname = t.classnames[label]
        for i in range(n + 6):
            rel = f"{cname}/extra_{label}_{i:03d}.jpg"
            write_image(osp.join(t.dataset_dir, "images", rel))
            key = "train" if i < n else ("val" if i < n + 3 else "test")
            split[key].append([rel, label, cname])
    for key in split:
        rng.shuffle(split[key])
    write_split_json(t.split_path, split)
    return root, t, split


@pytest.mark.parametrize("num_shots,seed", [(1, 1), (4, 2), (16, 3), (8, 17)])
def test_per_class_picks_equal_dassl_reference(shuffled_root, num_shots, seed):
    root, t, split = shuffled_root
    random.seed(seed)
    ref_train = dassl_fewshot_reference(split["train"], num_shots)
    ref_val = dassl_fewshot_reference(split["val"], min(num_shots, 4))  # train first, then val

    ds = build(root, "DescribableTextures", num_shots=num_shots, seed=seed)
    image_dir = osp.join(t.dataset_dir, "images")
    assert [osp.relpath(d.impath, image_dir) for d in ds.train_x] == [e[0] for e in ref_train]
    assert [d.label for d in ds.train_x] == [e[1] for e in ref_train]
    assert [osp.relpath(d.impath, image_dir) for d in ds.val] == [e[0] for e in ref_val]
    counts = Counter(d.label for d in ds.train_x)
    assert counts[0] == min(3, num_shots)  # a class smaller than K keeps all its images


def test_cached_picks_survive_a_different_global_rng(shuffled_root):
    """The second load reads the pickle; it does not re-sample (even if the RNG state differs)."""
    root, _, _ = shuffled_root
    a = build(root, "DescribableTextures", num_shots=4, seed=2)
    random.seed(999)
    from dassl.data.datasets import build_dataset

    from dataset_fixtures import make_cfg

    b = build_dataset(make_cfg(root, "DescribableTextures", num_shots=4, seed=2))
    assert [d.impath for d in a.train_x] == [d.impath for d in b.train_x]


# ---------------------------------------------------------------------------------------------
# stratified_proportional (SOT-GLP / GalLoP)
# ---------------------------------------------------------------------------------------------
def test_stratified_indices_equal_sklearn():
    sklearn = pytest.importorskip("sklearn")  # noqa: F841
    from sklearn.model_selection import StratifiedShuffleSplit

    from datasets.common import stratified_train_indices

    rng = np.random.RandomState(0)
    cases = [
        (rng.randint(0, 7, size=300), 16 * 7, 1),
        (np.repeat(np.arange(10), [60] * 10), 40, 2),  # balanced: ties broken by the RNG
        (np.repeat(np.arange(5), [2, 50, 13, 400, 7]), 5 * 16, 3),
        (rng.randint(0, 37, size=3000), 37 * 4, 0),
    ]
    for y, n_train, seed in cases:
        ours = stratified_train_indices(list(y), n_train, seed)
        sss = StratifiedShuffleSplit(n_splits=1, train_size=n_train, random_state=seed)
        theirs, _ = next(sss.split(y, y))
        assert ours == [int(i) for i in theirs]


def test_stratified_counts_are_proportional():
    from datasets.common import stratified_train_indices

    sizes = [2, 50, 13, 400, 7, 90]
    y = np.repeat(np.arange(len(sizes)), sizes)
    n_train = 16 * len(sizes)
    idx = stratified_train_indices(list(y), n_train, 5)
    assert len(idx) == len(set(idx)) == n_train
    counts = Counter(int(y[i]) for i in idx)
    for c, n in enumerate(sizes):
        share = n_train * n / len(y)
        assert math.floor(share) <= counts[c] <= math.ceil(share)
    assert stratified_train_indices(list(y), n_train, 5) == idx
    assert stratified_train_indices(list(y), n_train, 6) != idx


def test_stratified_sampler_in_a_dataset(shuffled_root, capsys):
    root, t, split = shuffled_root
    ds = build(root, "DescribableTextures", num_shots=4, seed=1,
               FEWSHOT_SAMPLER="stratified_proportional")
    out = capsys.readouterr().out
    cache = osp.join(t.dataset_dir, "split_fewshot", "shot_4-seed_1-stratified.pkl")
    assert f"Saving preprocessed few-shot data to {cache}" in out
    assert len(ds.train_x) == 4 * 5
    counts = Counter(d.label for d in ds.train_x)
    sizes = Counter(e[1] for e in split["train"])
    total = sum(sizes.values())
    for c, n in sizes.items():
        share = 20 * n / total
        assert math.floor(share) <= counts[c] <= math.ceil(share)
    # independent of the per-class cache, and reused by base/new
    base = build(root, "DescribableTextures", num_shots=4, seed=1, subsample="base",
                 FEWSHOT_SAMPLER="stratified_proportional")
    assert f"Loading preprocessed few-shot data from {cache}" in capsys.readouterr().out
    assert sorted(d.impath for d in base.train_x) == sorted(d.impath for d in ds.train_x if d.label < 3)


def test_stratified_matches_sklearn_on_the_split_order(shuffled_root):
    pytest.importorskip("sklearn")
    from sklearn.model_selection import StratifiedShuffleSplit

    root, t, split = shuffled_root
    ds = build(root, "DescribableTextures", num_shots=2, seed=7,
               FEWSHOT_SAMPLER="stratified_proportional")
    # GalLoP numbers a CoOp split's classes by first appearance in the split file
    ids = {}
    y = [ids.setdefault(e[1], len(ids)) for e in split["train"]]
    train_idx, _ = next(StratifiedShuffleSplit(n_splits=1, train_size=2 * 5, random_state=7).split(y, y))
    image_dir = osp.join(t.dataset_dir, "images")
    assert [osp.relpath(d.impath, image_dir) for d in ds.train_x] == [split["train"][i][0] for i in train_idx]


def test_unknown_sampler_is_rejected(shuffled_root):
    root, _, _ = shuffled_root
    with pytest.raises(ValueError, match="FEWSHOT_SAMPLER"):
        build(root, "DescribableTextures", num_shots=4, seed=11, FEWSHOT_SAMPLER="balanced")


# ---------------------------------------------------------------------------------------------
# subsample_classes as upstream
# ---------------------------------------------------------------------------------------------
def test_subsample_classes_rule():
    from dassl.data.datasets import Datum

    from datasets.common import subsample_classes

    train = [Datum(f"/x/{i}.jpg", label=lab, domain=3, classname=f"c{lab}") for i, lab in
             enumerate([4, 0, 2, 6, 2, 8, 0])]  # labels {0, 2, 4, 6, 8}: n = 5, m = 3
    test = [Datum(f"/t/{lab}.jpg", label=lab, classname=f"c{lab}") for lab in range(9)]
    assert subsample_classes(train, test, subsample="all") == (train, test)
    b_train, b_test = subsample_classes(train, test, subsample="base")
    assert [(d.label, d.classname) for d in b_train] == [(2, "c4"), (0, "c0"), (1, "c2"), (1, "c2"), (0, "c0")]
    assert all(d.domain == 0 for d in b_train)
    assert [d.label for d in b_test] == [0, 1, 2]
    n_train, n_test = subsample_classes(train, test, subsample="new")
    assert [(d.label, d.classname) for d in n_train] == [(0, "c6"), (1, "c8")]
    assert [d.classname for d in n_test] == ["c6", "c8"]
    with pytest.raises(ValueError, match="all"):
        subsample_classes(train, subsample="half")


def test_split_json_round_trip_format(tmp_path):
    from dassl.data.datasets import Datum

    from datasets.common import read_split, save_split

    prefix = str(tmp_path / "images")
    items = [Datum(osp.join(prefix, "a", f"{i}.jpg"), label=i % 2, classname=f"n{i % 2}") for i in range(4)]
    path = str(tmp_path / "split.json")
    save_split(items[:2], items[2:3], items[3:], path, prefix)
    with open(path) as f:
        text = f.read()
    assert '"train": [\n        [\n            "a/0.jpg",\n            0,\n            "n0"\n' in text
    assert json.loads(text)["val"] == [["a/2.jpg", 0, "n0"]]
    train, val, test = read_split(path, prefix)
    assert [(d.impath, d.label, d.classname) for d in train + val + test] == \
        [(d.impath, d.label, d.classname) for d in items]
