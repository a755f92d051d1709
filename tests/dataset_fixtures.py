"""Tiny on-disk trees in the layout of every benchmark dataset, for the dataset tests.

``make_tree(name, root, with_split=True)`` writes ``root/<dataset_dir>/...`` with a few 8x8 JPEGs
per class (real class names from ``datasets/coop_meta.json``), the raw annotation files CoOp
reads when a split JSON is absent, and (``with_split``) a ``split_zhou_<Name>.json`` in CoOp's
format. It returns a :class:`TreeInfo` with the class names in label order and the expected
number of images per split and label.

Class sizes differ (``BASE_SIZE + label``) so that per-class and proportional samplers differ.
"""
import io
import json
import os
import os.path as osp
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
META = json.load(open(osp.join(REPO, "datasets", "coop_meta.json")))
N_CLASSES = 5
BASE_SIZE = 10  # images of class c (trainval / total): BASE_SIZE + c


def _jpeg_bytes(size=8, seed=0):
    rng = np.random.RandomState(seed)
    arr = rng.randint(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


JPEG = _jpeg_bytes()


def write_image(path, data=JPEG):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_text(path, lines):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))


def write_split_json(path, split):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(split, f, indent=4, separators=(",", ": "))


@dataclass
class TreeInfo:
    """What a generated tree contains."""

    name: str
    root: str
    dataset_dir: str
    classnames: list  # label order
    counts: dict = field(default_factory=dict)  # split -> {label: n} of the split JSON / official lists
    raw_counts: dict = field(default_factory=dict)  # split -> {label: n} when the split is created
    split_path: str = ""

    def total(self, split, counts=None):
        return sum((counts or self.counts)[split].values())


def fixed_split(per_class_paths):
    """CoOp-like JSON content: per class (label order) the first half train, next 20% val, rest test."""
    split = {"train": [], "val": [], "test": []}
    counts = {k: {} for k in split}
    for label, (classname, rels) in enumerate(per_class_paths):
        n = len(rels)
        n_tr, n_va = n // 2, max(1, n // 5)
        parts = {"train": rels[:n_tr], "val": rels[n_tr:n_tr + n_va], "test": rels[n_tr + n_va:]}
        for k, part in parts.items():
            split[k] += [[r, label, classname] for r in part]
            counts[k][label] = len(part)
    return split, counts


def rule_counts_50_20_30(sizes):
    """Counts of ``read_and_split_data`` / Flowers: round(n*.5) train, round(n*.2) val, rest test."""
    out = {"train": {}, "val": {}, "test": {}}
    for label, n in enumerate(sizes):
        tr, va = round(n * 0.5), round(n * 0.2)
        out["train"][label], out["val"][label], out["test"][label] = tr, va, n - tr - va
    return out


def rule_counts_trainval(trainval_sizes, test_sizes):
    """Counts of ``split_trainval`` (val = round(n*.2)) plus the official test list."""
    out = {"train": {}, "val": {}, "test": {}}
    for label, n in enumerate(trainval_sizes):
        va = round(n * 0.2)
        out["train"][label], out["val"][label] = n - va, va
        out["test"][label] = test_sizes[label]
    return out


SIZES = [BASE_SIZE + c for c in range(N_CLASSES)]
TEST_SIZES = [4 + (c % 2) for c in range(N_CLASSES)]


# ---------------------------------------------------------------------------------------------
# Folder-per-class datasets (DTD, EuroSAT, Food101, Caltech101)
# ---------------------------------------------------------------------------------------------
def _folder_dataset(root, dataset_dir, image_subdir, split_name, entries, name_fn, with_split,
                    extra_folders=()):
    ddir = osp.join(root, dataset_dir)
    idir = osp.join(ddir, image_subdir)
    per_class = []
    for c, (folder, classname) in enumerate(entries):
        rels = []
        for i in range(SIZES[c]):
            rel = f"{folder}/{name_fn(folder, i)}"
            write_image(osp.join(idir, rel))
            rels.append(rel)
        per_class.append((classname, rels))
    for folder in extra_folders:  # e.g. Caltech's ignored folders
        for i in range(3):
            write_image(osp.join(idir, folder, name_fn(folder, i)))
    split, counts = fixed_split(per_class)
    split_path = osp.join(ddir, split_name)
    if with_split:
        write_split_json(split_path, split)
    return ddir, counts, split_path


def make_dtd(root, with_split=True):
    entries = [(e["folder"], e["classname"]) for e in META["DescribableTextures"][:N_CLASSES]]
    ddir, counts, sp = _folder_dataset(root, "dtd", "images", "split_zhou_DescribableTextures.json",
                                       entries, lambda f, i: f"{f}_{i:04d}.jpg", with_split)
    os.makedirs(osp.join(ddir, "labels"), exist_ok=True)
    return TreeInfo("DescribableTextures", root, ddir, [c for _, c in entries], counts,
                    rule_counts_50_20_30(SIZES), sp)


def make_eurosat(root, with_split=True):
    entries = [(e["folder"], e["classname"]) for e in META["EuroSAT"][:N_CLASSES]]
    ddir, counts, sp = _folder_dataset(root, "eurosat", "2750", "split_zhou_EuroSAT.json", entries,
                                       lambda f, i: f"{f}_{i + 1}.jpg", with_split)
    return TreeInfo("EuroSAT", root, ddir, [c for _, c in entries], counts,
                    rule_counts_50_20_30(SIZES), sp)


def make_food101(root, with_split=True):
    entries = [(e["folder"], e["classname"]) for e in META["Food101"][:N_CLASSES]]
    ddir, counts, sp = _folder_dataset(root, "food-101", "images", "split_zhou_Food101.json", entries,
                                       lambda f, i: f"{100000 + 37 * i}.jpg", with_split)
    write_text(osp.join(ddir, "meta", "classes.txt"), [f for f, _ in entries])
    return TreeInfo("Food101", root, ddir, [c for _, c in entries], counts,
                    rule_counts_50_20_30(SIZES), sp)


def make_caltech101(root, with_split=True):
    entries = [(e["folder"], e["classname"]) for e in META["Caltech101"][:N_CLASSES]]
    ddir, counts, sp = _folder_dataset(root, "caltech-101", "101_ObjectCategories",
                                       "split_zhou_Caltech101.json", entries,
                                       lambda f, i: f"image_{i + 1:04d}.jpg", with_split,
                                       extra_folders=("BACKGROUND_Google", "Faces_easy"))
    return TreeInfo("Caltech101", root, ddir, [c for _, c in entries], counts,
                    rule_counts_50_20_30(SIZES), sp)


# ---------------------------------------------------------------------------------------------
# Annotation-list datasets
# ---------------------------------------------------------------------------------------------
def make_oxford_pets(root, with_split=True):
    ddir = osp.join(root, "oxford_pets")
    entries = META["OxfordPets"][:N_CLASSES]
    trainval, test, per_class = [], [], []
    for c, e in enumerate(entries):
        species = 1 if e["prefix"][0].isupper() else 2
        names = [f"{e['prefix']}_{i + 1}" for i in range(SIZES[c] + TEST_SIZES[c])]
        for n in names:
            write_image(osp.join(ddir, "images", n + ".jpg"))
        lines = [f"{n} {c + 1} {species} {c + 1}" for n in names]
        trainval += lines[:SIZES[c]]
        test += lines[SIZES[c]:]
        per_class.append((e["classname"], [n + ".jpg" for n in names]))
    write_text(osp.join(ddir, "annotations", "trainval.txt"), trainval)
    write_text(osp.join(ddir, "annotations", "test.txt"), test)
    split, counts = fixed_split(per_class)
    sp = osp.join(ddir, "split_zhou_OxfordPets.json")
    if with_split:
        write_split_json(sp, split)
    return TreeInfo("OxfordPets", root, ddir, [e["classname"] for e in entries], counts,
                    rule_counts_trainval(SIZES, TEST_SIZES), sp)


def make_oxford_flowers(root, with_split=True):
    from scipy.io import savemat

    ddir = osp.join(root, "oxford_flowers")
    entries = META["OxfordFlowers"][:N_CLASSES]
    # images interleaved across classes, as in imagelabels.mat
    labels = []
    for c in range(N_CLASSES):
        labels += [c + 1] * SIZES[c]
    labels = list(np.random.RandomState(0).permutation(labels))
    per_class = [(e["classname"], []) for e in entries]
    for i, lab in enumerate(labels):
        name = f"image_{i + 1:05d}.jpg"
        write_image(osp.join(ddir, "jpg", name))
        per_class[lab - 1][1].append(name)
    savemat(osp.join(ddir, "imagelabels.mat"), {"labels": np.array([labels], dtype=np.uint8)})
    with open(osp.join(ddir, "cat_to_name.json"), "w") as f:
        json.dump({str(c + 1): e["classname"] for c, e in enumerate(entries)}, f)
    split, counts = fixed_split(per_class)
    sp = osp.join(ddir, "split_zhou_OxfordFlowers.json")
    if with_split:
        write_split_json(sp, split)
    return TreeInfo("OxfordFlowers", root, ddir, [e["classname"] for e in entries], counts,
                    rule_counts_50_20_30(SIZES), sp)


def make_stanford_cars(root, with_split=True):
    from scipy.io import savemat

    ddir = osp.join(root, "stanford_cars")
    entries = META["StanfordCars"][:N_CLASSES]
    meta_names = []  # devkit order: "<make model> <year>"
    for e in entries:
        words = e["classname"].split(" ")
        meta_names.append(" ".join(words[1:] + words[:1]))
    per_class = [(e["classname"], []) for e in entries]

    def annos(folder, sizes):
        recs, k = [], 0
        for c, n in enumerate(sizes):
            for _ in range(n):
                k += 1
                fname = f"{k:05d}.jpg"
                write_image(osp.join(ddir, folder, fname))
                recs.append((fname, c + 1))
                per_class[c][1].append(f"{folder}/{fname}")
        arr = np.zeros((1, len(recs)), dtype=[("fname", "O"), ("class", "O")])
        for j, (fname, cls) in enumerate(recs):
            arr[0, j] = (fname, np.array([[cls]], dtype=np.uint8))
        return arr

    os.makedirs(osp.join(ddir, "devkit"), exist_ok=True)
    savemat(osp.join(ddir, "devkit", "cars_train_annos.mat"), {"annotations": annos("cars_train", SIZES)})
    savemat(osp.join(ddir, "cars_test_annos_withlabels.mat"),
            {"annotations": annos("cars_test", TEST_SIZES)})
    names = np.empty((1, len(meta_names)), dtype=object)
    for j, n in enumerate(meta_names):
        names[0, j] = n
    savemat(osp.join(ddir, "devkit", "cars_meta.mat"), {"class_names": names})
    split, counts = fixed_split(per_class)
    sp = osp.join(ddir, "split_zhou_StanfordCars.json")
    if with_split:
        write_split_json(sp, split)
    return TreeInfo("StanfordCars", root, ddir, [e["classname"] for e in entries], counts,
                    rule_counts_trainval(SIZES, TEST_SIZES), sp)


def make_sun397(root, with_split=True):
    ddir = osp.join(root, "sun397")
    entries = META["SUN397"][:N_CLASSES]
    training, testing, per_class = [], [], []
    for c, e in enumerate(entries):
        rels = []
        for i in range(SIZES[c] + TEST_SIZES[c]):
            rel = f"{e['path'][1:]}/sun_{c:02d}{i:04d}abcdef.jpg"
            write_image(osp.join(ddir, "SUN397", rel))
            rels.append(rel)
        training += ["/" + r for r in rels[:SIZES[c]]]
        testing += ["/" + r for r in rels[SIZES[c]:]]
        per_class.append((e["classname"], rels))
    write_text(osp.join(ddir, "ClassName.txt"), [e["path"] for e in entries])
    write_text(osp.join(ddir, "Training_01.txt"), training)
    write_text(osp.join(ddir, "Testing_01.txt"), testing)
    split, counts = fixed_split(per_class)
    sp = osp.join(ddir, "split_zhou_SUN397.json")
    if with_split:
        write_split_json(sp, split)
    return TreeInfo("SUN397", root, ddir, [e["classname"] for e in entries], counts,
                    rule_counts_trainval(SIZES, TEST_SIZES), sp)


def make_ucf101(root, with_split=True):
    ddir = osp.join(root, "ucf101")
    # include a class whose file names differ from its classInd name (HandstandPushups)
    entries = META["UCF101"][:N_CLASSES - 1] + [e for e in META["UCF101"]
                                                if e["classind"] != e["file_action"]][:1]
    classind, trainlist, testlist, per_class = [], [], [], []
    for c, e in enumerate(entries):
        classind.append(f"{c + 1} {e['classind']}")
        rels = []
        for i in range(SIZES[c] + TEST_SIZES[c]):
            stem = f"v_{e['file_action']}_g{i + 1:02d}_c01"
            write_image(osp.join(ddir, "UCF-101-midframes", e["folder"], stem + ".jpg"))
            rels.append(f"{e['folder']}/{stem}.jpg")
            line = f"{e['classind']}/{stem}.avi"
            if i < SIZES[c]:
                trainlist.append(f"{line} {c + 1}")
            else:
                testlist.append(line)
        per_class.append((e["classname"], rels))
    write_text(osp.join(ddir, "ucfTrainTestlist", "classInd.txt"), classind)
    write_text(osp.join(ddir, "ucfTrainTestlist", "trainlist01.txt"), trainlist)
    write_text(osp.join(ddir, "ucfTrainTestlist", "testlist01.txt"), testlist)
    split, counts = fixed_split(per_class)
    sp = osp.join(ddir, "split_zhou_UCF101.json")
    if with_split:
        write_split_json(sp, split)
    return TreeInfo("UCF101", root, ddir, [e["classname"] for e in entries], counts,
                    rule_counts_trainval(SIZES, TEST_SIZES), sp)


def make_fgvc_aircraft(root, with_split=True, trainval_file=True):
    """FGVC lists; ``with_split`` is ignored (no split JSON exists for this dataset)."""
    ddir = osp.join(root, "fgvc_aircraft")
    classes = [e["classname"] for e in META["FGVCAircraft"][:N_CLASSES]]
    lists = {"train": [], "val": [], "test": []}
    counts = {k: {} for k in lists}
    k = 1000000
    for c, cname in enumerate(classes):
        sizes = {"train": 3 + c % 3, "val": 3, "test": 2 + c % 2}
        for split, n in sizes.items():
            for _ in range(n):
                k += 7
                write_image(osp.join(ddir, "images", f"{k:07d}.jpg"))
                lists[split].append(f"{k:07d} {cname}")
            counts[split][c] = n
    write_text(osp.join(ddir, "variants.txt"), classes)
    for split, lines in lists.items():
        write_text(osp.join(ddir, f"images_variant_{split}.txt"), lines)
    if trainval_file:  # official file: sorted by image id (interleaves train and val)
        write_text(osp.join(ddir, "images_variant_trainval.txt"), sorted(lists["train"] + lists["val"]))
    return TreeInfo("FGVCAircraft", root, ddir, classes, counts, counts, "")


# ---------------------------------------------------------------------------------------------
# ImageNet and variants, OOD
# ---------------------------------------------------------------------------------------------
def imagenet_classnames():
    path = osp.join(REPO, "datasets", "imagenet_classnames.txt")
    out = []
    for line in open(path):
        parts = line.strip().split(" ")
        out.append((parts[0], " ".join(parts[1:])))
    return out


def make_imagenet(root, with_split=True, n_classes=4, with_classnames=True):
    """``imagenet/images/{train,val}/<wnid>/``; ``with_split`` is ignored (no split JSON)."""
    ddir = osp.join(root, "imagenet")
    names = imagenet_classnames()
    wnids = [names[i] for i in (0, 7, 100, 999)][:n_classes]
    counts = {"train": {}, "test": {}}
    for c, (wnid, _) in enumerate(wnids):
        n_tr, n_va = SIZES[c % N_CLASSES], 3
        for i in range(n_tr):
            write_image(osp.join(ddir, "images", "train", wnid, f"{wnid}_{i + 1}.JPEG"))
        for i in range(n_va):
            write_image(osp.join(ddir, "images", "val", wnid, f"ILSVRC2012_val_{c * 100 + i + 1:08d}.JPEG"))
        counts["train"][c], counts["test"][c] = n_tr, n_va
    if with_classnames:
        write_text(osp.join(ddir, "classnames.txt"), [f"{w} {n}" for w, n in names])
    return TreeInfo("ImageNet", root, ddir, [n for _, n in wnids], counts, counts, "")


def make_imagenet_sketch(root, with_split=True):
    ddir = osp.join(root, "imagenet-sketch")
    names = imagenet_classnames()
    picked = [names[i] for i in (3, 1, 500)]
    picked.sort()
    for c, (wnid, _) in enumerate(picked):
        for i in range(2 + c):
            write_image(osp.join(ddir, "images", wnid, f"sketch_{i}.jpeg"))
    write_text(osp.join(ddir, "classnames.txt"), [f"{w} {n}" for w, n in names])
    counts = {"test": {c: 2 + c for c in range(len(picked))}}
    return TreeInfo("ImageNetSketch", root, ddir, [n for _, n in picked], counts, counts, "")


def make_imagenetv2(root, with_split=True):
    ddir = osp.join(root, "imagenetv2")
    names = imagenet_classnames()
    idir = osp.join(ddir, "imagenetv2-matched-frequency-format-val")
    for i in range(len(names)):
        os.makedirs(osp.join(idir, str(i)), exist_ok=True)
    used = [0, 1, 2, 999]
    for i in used:
        for j in range(2):
            write_image(osp.join(idir, str(i), f"{j}abc{i}.jpeg"))
    write_text(osp.join(ddir, "classnames.txt"), [f"{w} {n}" for w, n in names])
    counts = {"test": {i: 2 for i in used}}
    return TreeInfo("ImageNetV2", root, ddir, [names[i][1] for i in used], counts, counts, "")


def _make_ar(root, dataset_dir, image_subdir, key, name):
    ddir = osp.join(root, dataset_dir)
    names = dict(imagenet_classnames())
    wnids = META[key][5:8]
    for c, wnid in enumerate(wnids):
        for i in range(3):
            write_image(osp.join(ddir, image_subdir, wnid, f"{i}.jpg"))
    write_text(osp.join(ddir, image_subdir, "README.txt"), ["readme"])
    write_text(osp.join(ddir, "classnames.txt"), [f"{w} {n}" for w, n in imagenet_classnames()])
    counts = {"test": {c: 3 for c in range(len(wnids))}}
    return TreeInfo(name, root, ddir, [names[w] for w in sorted(wnids)], counts, counts, "")


def make_imagenet_a(root, with_split=True):
    return _make_ar(root, "imagenet-adversarial", "imagenet-a", "ImageNetA_wnids", "ImageNetA")


def make_imagenet_r(root, with_split=True):
    return _make_ar(root, "imagenet-rendition", "imagenet-r", "ImageNetR_wnids", "ImageNetR")


def make_ood(root, name):
    """One OOD set in the MOS layout; returns the number of images."""
    if name == "OODTextures":
        base = osp.join(root, "ood_data", "dtd", "images")
        for folder in ("banded", "zigzagged"):
            for i in range(3):
                write_image(osp.join(base, folder, f"{folder}_{i}.jpg"))
        write_text(osp.join(base, "banded", "notes.txt"), ["not an image"])
        return 6
    sub = {"OODiNaturalist": "iNaturalist", "OODSUN": "SUN", "OODPlaces": "Places"}[name]
    base = osp.join(root, "ood_data", sub, "images")
    for i in range(4):
        write_image(osp.join(base, f"{i:03d}.jpg"))
    write_text(osp.join(base, "Thumbs.db"), ["x"])
    return 4


MAKERS = {
    "DescribableTextures": make_dtd,
    "EuroSAT": make_eurosat,
    "Food101": make_food101,
    "Caltech101": make_caltech101,
    "OxfordPets": make_oxford_pets,
    "OxfordFlowers": make_oxford_flowers,
    "StanfordCars": make_stanford_cars,
    "SUN397": make_sun397,
    "UCF101": make_ucf101,
    "FGVCAircraft": make_fgvc_aircraft,
    "ImageNet": make_imagenet,
    "ImageNetSketch": make_imagenet_sketch,
    "ImageNetV2": make_imagenetv2,
    "ImageNetA": make_imagenet_a,
    "ImageNetR": make_imagenet_r,
}
JSON_DATASETS = ["DescribableTextures", "EuroSAT", "Food101", "Caltech101", "OxfordPets",
                 "OxfordFlowers", "StanfordCars", "SUN397", "UCF101"]
TRAIN_DATASETS = JSON_DATASETS + ["FGVCAircraft", "ImageNet"]
VARIANTS = ["ImageNetSketch", "ImageNetV2", "ImageNetA", "ImageNetR"]


def make_tree(name, root, with_split=True):
    return MAKERS[name](str(root), with_split=with_split)


def make_cfg(root, name, num_shots=-1, seed=1, subsample="all", **dataset_keys):
    """A project config as train.py builds it (``get_cfg_default`` + ``extend_cfg``)."""
    from dassl.config import get_cfg_default

    from trainers.config import extend_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = name
    cfg.DATASET.NUM_SHOTS = num_shots
    cfg.DATASET.SUBSAMPLE_CLASSES = subsample
    cfg.SEED = seed
    for k, v in dataset_keys.items():
        cfg.DATASET[k] = v
    return cfg


def build(root, name, num_shots=-1, seed=1, subsample="all", **dataset_keys):
    """Seed Python's ``random`` (as train.py's set_random_seed does) and build the dataset."""
    import random

    import datasets  # noqa: F401  (registers)
    from dassl.data.datasets import build_dataset

    cfg = make_cfg(root, name, num_shots, seed, subsample, **dataset_keys)
    if seed >= 0:
        random.seed(seed)
        np.random.seed(seed)
    return build_dataset(cfg)
