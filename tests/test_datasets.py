"""Every dataset class on a tiny generated tree in its own layout (DATASETS.md).

Checks class names, label order, counts per split, K-shot counts, the few-shot cache (created
once, reused with the same images, shared by base / new / all), base/new subsampling, split
creation from the raw annotations, the test-only variants and the OOD sets.
"""
import math
import os
import os.path as osp
import pickle
from collections import Counter

import pytest

from dataset_fixtures import (
    JSON_DATASETS, TRAIN_DATASETS, VARIANTS, build, make_ood, make_tree,
)


def per_label(items):
    return dict(Counter(d.label for d in items))


def paths(items):
    return [d.impath for d in items]


def expected_split_names(name):
    return ("train", "test") if name == "ImageNet" else ("train", "val", "test")


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """One root with every train dataset (split JSON where CoOp ships one) and the variants."""
    root = tmp_path_factory.mktemp("data")
    info = {name: make_tree(name, root) for name in TRAIN_DATASETS + VARIANTS}
    return root, info


# ---------------------------------------------------------------------------------------------
# The 11 train datasets
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TRAIN_DATASETS)
def test_full_splits_names_labels_counts(trees, name, capsys):
    root, info = trees
    t = info[name]
    ds = build(root, name, num_shots=-1)
    assert ds.classnames == t.classnames
    assert ds.num_classes == len(t.classnames)
    assert ds.lab2cname == dict(enumerate(t.classnames))
    assert per_label(ds.train_x) == t.counts["train"]
    assert per_label(ds.test) == t.counts["test"]
    if name == "ImageNet":
        assert ds.val is ds.test
    else:
        assert per_label(ds.val) == t.counts["val"]
    # label <-> class name is consistent in every split
    for split in (ds.train_x, ds.val, ds.test):
        assert all(d.classname == t.classnames[d.label] for d in split)
        assert all(d.domain == 0 for d in split)
    out = capsys.readouterr().out
    if name in JSON_DATASETS:
        assert f"Reading split from {t.split_path}" in out
    assert not osp.exists(osp.join(t.dataset_dir, "split_fewshot", "shot_-1-seed_1.pkl"))


@pytest.mark.parametrize("name", TRAIN_DATASETS)
def test_fewshot_cache_created_reused_and_shared_by_base_new(trees, name, capsys):
    root, info = trees
    t = info[name]
    k, seed = 2, 3
    cache = osp.join(t.dataset_dir, "split_fewshot", f"shot_{k}-seed_{seed}.pkl")
    if osp.exists(cache):
        os.remove(cache)

    ds = build(root, name, num_shots=k, seed=seed)
    out = capsys.readouterr().out
    assert f"Creating a {k}-shot dataset" in out
    assert f"Saving preprocessed few-shot data to {cache}" in out
    assert osp.isfile(cache)
    assert not [f for f in os.listdir(osp.dirname(cache)) if ".tmp" in f]  # atomic write
    assert per_label(ds.train_x) == {c: k for c in range(len(t.classnames))}
    assert per_label(ds.test) == t.counts["test"]  # the test split is never subsampled
    if name != "ImageNet":
        assert per_label(ds.val) == {c: min(k, 4) for c in range(len(t.classnames))}
    with open(cache, "rb") as f:
        data = pickle.load(f)
    assert paths(data["train"]) == paths(ds.train_x)
    assert set(data) == ({"train"} if name == "ImageNet" else {"train", "val"})
    assert type(data["train"][0]).__module__ == "dassl.data.datasets.base_dataset"
    mtime = os.stat(cache).st_mtime_ns

    # second load: same images, from the cache
    again = build(root, name, num_shots=k, seed=seed)
    out = capsys.readouterr().out
    assert f"Loading preprocessed few-shot data from {cache}" in out
    assert "Creating a" not in out
    assert paths(again.train_x) == paths(ds.train_x)
    assert paths(again.val) == paths(ds.val)

    # base / new read the same cache (made before subsampling)
    n = len(t.classnames)
    m = math.ceil(n / 2)
    base = build(root, name, num_shots=k, seed=seed, subsample="base")
    out_base = capsys.readouterr().out
    new = build(root, name, num_shots=k, seed=seed, subsample="new")
    out_new = capsys.readouterr().out
    assert f"Loading preprocessed few-shot data from {cache}" in out_base
    assert f"Loading preprocessed few-shot data from {cache}" in out_new
    assert "SUBSAMPLE BASE CLASSES!" in out_base and "SUBSAMPLE NEW CLASSES!" in out_new
    assert os.stat(cache).st_mtime_ns == mtime
    assert os.listdir(osp.dirname(cache)).count(osp.basename(cache)) == 1

    assert base.classnames == t.classnames[:m]
    assert new.classnames == t.classnames[m:]
    assert sorted(per_label(base.train_x)) == list(range(m))
    assert sorted(per_label(new.train_x)) == list(range(n - m))  # relabelled from 0
    assert sorted(per_label(base.test)) == list(range(m))
    assert per_label(new.test) == {c - m: v for c, v in t.counts["test"].items() if c >= m}
    # base + new train images are exactly the "all" few-shot images
    assert sorted(paths(base.train_x) + paths(new.train_x)) == sorted(paths(ds.train_x))
    base_paths = {d.impath: d.label for d in ds.train_x if d.label < m}
    assert {d.impath: d.label for d in base.train_x} == base_paths
    new_paths = {d.impath: d.label - m for d in ds.train_x if d.label >= m}
    assert {d.impath: d.label for d in new.train_x} == new_paths


@pytest.mark.parametrize("name", JSON_DATASETS)
def test_split_created_from_raw_annotations(tmp_path, name, capsys):
    t = make_tree(name, tmp_path, with_split=False)
    assert not osp.exists(t.split_path)
    ds = build(tmp_path, name, num_shots=-1, seed=1)
    out = capsys.readouterr().out
    assert f"Saved split to {t.split_path}" in out
    assert "Splitting" in out
    assert ds.classnames == t.classnames
    for split, items in (("train", ds.train_x), ("val", ds.val), ("test", ds.test)):
        assert per_label(items) == t.raw_counts[split], split
    # the saved split is CoOp's format and reads back to the same lists
    import json

    with open(t.split_path) as f:
        saved = json.load(f)
    assert set(saved) == {"train", "val", "test"}
    rel, label, cname = saved["train"][0]
    assert not osp.isabs(rel) and isinstance(label, int) and cname in t.classnames
    again = build(tmp_path, name, num_shots=-1, seed=99)
    assert f"Reading split from {t.split_path}" in capsys.readouterr().out
    for a, b in ((ds.train_x, again.train_x), (ds.val, again.val), (ds.test, again.test)):
        assert [(d.impath, d.label, d.classname) for d in a] == [(d.impath, d.label, d.classname) for d in b]


def test_split_creation_is_deterministic_given_seed(tmp_path):
    t1 = make_tree("DescribableTextures", tmp_path / "a", with_split=False)
    t2 = make_tree("DescribableTextures", tmp_path / "b", with_split=False)
    a = build(tmp_path / "a", "DescribableTextures", seed=5)
    b = build(tmp_path / "b", "DescribableTextures", seed=5)
    rel = lambda items, t: sorted(osp.relpath(d.impath, t.dataset_dir) for d in items)  # noqa: E731
    assert rel(a.train_x, t1) == rel(b.train_x, t2)
    assert rel(a.test, t1) == rel(b.test, t2)


def test_caltech_ignores_background_and_faces_easy(trees):
    root, _ = trees
    ds = build(root, "Caltech101")
    folders = {osp.basename(osp.dirname(d.impath)) for d in ds.train_x + ds.val + ds.test}
    assert not folders & {"BACKGROUND_Google", "Faces_easy"}
    assert "face" in ds.classnames and "Faces" not in ds.classnames


def test_eurosat_class_name_mapping(trees):
    root, _ = trees
    ds = build(root, "EuroSAT")
    assert ds.classnames[:3] == ["Annual Crop Land", "Forest", "Herbaceous Vegetation Land"]


def test_stanford_cars_paths_relative_to_dataset_dir(trees):
    root, info = trees
    ds = build(root, "StanfordCars")
    d = info["StanfordCars"].dataset_dir
    prefixes = (osp.join(d, "cars_train") + os.sep, osp.join(d, "cars_test") + os.sep)
    assert all(p.startswith(prefixes) for p in paths(ds.train_x + ds.val + ds.test))


def test_fgvc_trainval_switch(tmp_path, capsys):
    t = make_tree("FGVCAircraft", tmp_path)
    ds = build(tmp_path, "FGVCAircraft", FGVC_TRAIN_SPLIT="trainval")
    want = {c: t.counts["train"][c] + t.counts["val"][c] for c in t.counts["train"]}
    assert per_label(ds.train_x) == want
    assert per_label(ds.test) == t.counts["test"]
    # order follows the official images_variant_trainval.txt (sorted by id)
    assert paths(ds.train_x) == sorted(paths(ds.train_x))
    os.remove(osp.join(t.dataset_dir, "images_variant_trainval.txt"))
    ds2 = build(tmp_path, "FGVCAircraft", FGVC_TRAIN_SPLIT="trainval")
    assert sorted(paths(ds2.train_x)) == sorted(paths(ds.train_x))
    build(tmp_path, "FGVCAircraft", num_shots=2, FGVC_TRAIN_SPLIT="trainval")
    assert osp.isfile(osp.join(t.dataset_dir, "split_fewshot", "shot_2-seed_1-trainval.pkl"))
    with pytest.raises(ValueError, match="FGVC_TRAIN_SPLIT"):
        build(tmp_path, "FGVCAircraft", FGVC_TRAIN_SPLIT="all")


def test_imagenet_preprocessed_cache_and_shipped_classnames(tmp_path, monkeypatch, capsys):
    t = make_tree("ImageNet", tmp_path)
    os.remove(osp.join(t.dataset_dir, "classnames.txt"))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the shipped classnames.txt must not depend on the cwd
    ds = build(tmp_path, "ImageNet")
    assert "shipped with the repository" in capsys.readouterr().out
    assert ds.classnames == t.classnames
    pre = osp.join(t.dataset_dir, "preprocessed.pkl")
    assert osp.isfile(pre)
    with open(pre, "rb") as f:
        data = pickle.load(f)
    assert set(data) == {"train", "test"}
    again = build(tmp_path, "ImageNet")
    assert paths(again.train_x) == paths(ds.train_x)
    assert paths(again.test) == paths(ds.test)


def test_imagenet_flat_val_folder_is_explained(tmp_path):
    t = make_tree("ImageNet", tmp_path)
    val = osp.join(t.dataset_dir, "images", "val")
    for wnid in os.listdir(val):
        for f in os.listdir(osp.join(val, wnid)):
            os.rename(osp.join(val, wnid, f), osp.join(val, f))
        os.rmdir(osp.join(val, wnid))
    from datasets.common import DatasetNotFoundError

    with pytest.raises(DatasetNotFoundError, match="sorted into the 1000 class folders"):
        build(tmp_path, "ImageNet")


# ---------------------------------------------------------------------------------------------
# Test-only variants and OOD sets
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", VARIANTS)
def test_imagenet_variants(trees, name):
    root, info = trees
    t = info[name]
    ds = build(root, name, num_shots=16, subsample="base")  # both ignored
    assert ds.train_x is ds.test
    assert not ds.val
    labels = sorted(t.counts["test"])
    assert per_label(ds.test) == t.counts["test"]
    assert ds.classnames == t.classnames
    assert sorted(ds.lab2cname) == labels
    assert not osp.exists(osp.join(t.dataset_dir, "split_fewshot"))


@pytest.mark.parametrize("name", ["ImageNetA", "ImageNetR"])
def test_imagenet_a_r_are_200_class_problems(name):
    from dassl.data.datasets import DATASET_REGISTRY

    from datasets.meta import coop_meta

    cls = DATASET_REGISTRY.get(name)
    wnids = cls.expected_folders(None)
    assert len(wnids) == 200 == cls.NUM_CLASSES
    assert wnids == sorted(wnids)
    assert wnids == coop_meta()[f"{name}_wnids"]


def test_imagenetv2_uses_positional_classnames(trees):
    root, info = trees
    ds = build(root, "ImageNetV2")
    from dataset_fixtures import imagenet_classnames

    names = imagenet_classnames()
    assert ds.lab2cname == {i: names[i][1] for i in (0, 1, 2, 999)}
    assert ds.num_classes == 1000


@pytest.mark.parametrize("name", ["OODiNaturalist", "OODSUN", "OODPlaces", "OODTextures"])
def test_ood_sets(tmp_path, name):
    n = make_ood(tmp_path, name)
    ds = build(tmp_path, name, num_shots=16)
    assert len(ds.test) == n and ds.train_x is ds.test and not ds.val
    assert all(p.endswith(".jpg") for p in paths(ds.test))


def test_build_ood_datasets_order(tmp_path):
    from datasets.ood import build_ood_datasets
    from dataset_fixtures import make_cfg

    for name in ("OODiNaturalist", "OODSUN", "OODPlaces", "OODTextures"):
        make_ood(tmp_path, name)
    sets = build_ood_datasets(make_cfg(tmp_path, "ImageNet"))
    assert list(sets) == ["iNaturalist", "SUN", "Places", "Textures"]
    assert [len(s.test) for s in sets.values()] == [4, 4, 4, 6]


def test_every_registered_dataset_has_a_config_file():
    import yaml

    import datasets

    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg_dir = osp.join(repo, "configs", "datasets")
    names = {}
    for f in os.listdir(cfg_dir):
        with open(osp.join(cfg_dir, f)) as fh:
            names[f] = yaml.safe_load(fh)["DATASET"]["NAME"]
    assert set(names.values()) == (set(datasets.ALL_DATASETS) | set(datasets.SYNTHETIC_DATASETS)
                                   | set(datasets.OWN_DATASETS))
    # the 15 upstream file stems (CoOp's ``configs/datasets/``)
    upstream = {"caltech101": "Caltech101", "dtd": "DescribableTextures", "eurosat": "EuroSAT",
                "fgvc_aircraft": "FGVCAircraft", "food101": "Food101", "imagenet": "ImageNet",
                "imagenet_a": "ImageNetA", "imagenet_r": "ImageNetR",
                "imagenet_sketch": "ImageNetSketch", "imagenetv2": "ImageNetV2",
                "oxford_flowers": "OxfordFlowers", "oxford_pets": "OxfordPets",
                "stanford_cars": "StanfordCars", "sun397": "SUN397", "ucf101": "UCF101"}
    for stem, name in upstream.items():
        assert names[f"{stem}.yaml"] == name


def test_upstream_static_helpers_exist():
    """Other repos' dataset files call these through the CoOp classes."""
    from datasets.dtd import DescribableTextures
    from datasets.imagenet import ImageNet
    from datasets.oxford_pets import OxfordPets

    for fn in ("read_split", "save_split", "split_trainval", "subsample_classes"):
        assert callable(getattr(OxfordPets, fn))
    assert callable(DescribableTextures.read_and_split_data)
    assert callable(ImageNet.read_classnames)


def test_datasets_md_has_a_section_per_dataset():
    """Errors point to DATASETS.md sections by name; each must exist with its checker command."""
    import datasets
    from dassl.data.datasets import DATASET_REGISTRY

    from datasets.ood import OOD_SECTION

    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    with open(osp.join(repo, "DATASETS.md")) as f:
        text = f.read()
    headings = {line[3:].strip() for line in text.splitlines() if line.startswith("## ")}
    for name in datasets.ALL_DATASETS:
        cls = DATASET_REGISTRY.get(name)
        section = cls.section() if hasattr(cls, "section") else OOD_SECTION
        assert section in headings, name
        assert f"python -m datasets.check --root $DATA {name}" in text or name.startswith("OOD")
    assert "python -m datasets.check --root $DATA OODiNaturalist OODSUN OODPlaces OODTextures" in text
