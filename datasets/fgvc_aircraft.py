"""FGVC-Aircraft 2013b, variant level (100 classes; DATASETS.md).

``$DATA/fgvc_aircraft/`` = the ``data/`` folder of ``fgvc-aircraft-2013b.tar.gz``: ``images/`` and
``variants.txt``, ``images_variant_{train,val,test}.txt``. There is no split JSON: the official
lists are read on every run (labels by ``variants.txt`` line order; a list line is ``<id>
<variant words...>``, path ``images/<id>.jpg``).

Project switch ``DATASET.FGVC_TRAIN_SPLIT``: ``"train"`` (CoOp) or ``"trainval"`` (SOT-GLP /
torchvision: train on ``images_variant_trainval.txt``, or train + val when that file is absent);
the few-shot cache name then ends in ``-trainval``.
"""
import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .common import (
    CoOpDataset, FileIndex, SplitFileError, add_class_count, add_split_counts, cfg_get, read_lines,
)

TRAIN_SPLITS = ("train", "trainval")


@DATASET_REGISTRY.register()
class FGVCAircraft(CoOpDataset):
    """FGVC-Aircraft from the official variant lists."""

    dataset_dir = "fgvc_aircraft"
    image_subdir = "images"
    split_file = None
    raw_files = ("variants.txt", "images_variant_train.txt", "images_variant_val.txt",
                 "images_variant_test.txt")
    NUM_CLASSES = 100
    EXPECTED_COUNTS = {"train": 3334, "val": 3333, "test": 3333}

    def __init__(self, cfg):
        self.train_split = cfg_get(cfg, "FGVC_TRAIN_SPLIT", "train")
        if self.train_split not in TRAIN_SPLITS:
            raise ValueError(f"DATASET.FGVC_TRAIN_SPLIT must be one of {list(TRAIN_SPLITS)}, "
                             f'got "{self.train_split}"')
        self.fewshot_suffix = "-trainval" if self.train_split == "trainval" else ""
        super().__init__(cfg)

    @staticmethod
    def read_variants(path):
        """Class names in ``variants.txt`` order."""
        return read_lines(path)

    def read_data(self, cname2lab, split_file):
        path = osp.join(self.dataset_dir, split_file)
        items = []
        for line in read_lines(path):
            imname, _, classname = line.partition(" ")
            if classname not in cname2lab:
                raise SplitFileError(f'"{path}": variant "{classname}" (image {imname}) is not in '
                                     "variants.txt")
            items.append(Datum(impath=osp.join(self.image_dir, imname + ".jpg"),
                               label=cname2lab[classname], classname=classname))
        return items

    def read_raw_splits(self):
        for rel in self.raw_files:
            self._require_file(osp.join(self.dataset_dir, rel), "annotation file")
        classnames = self.read_variants(osp.join(self.dataset_dir, "variants.txt"))
        cname2lab = {c: i for i, c in enumerate(classnames)}
        train = self.read_data(cname2lab, "images_variant_train.txt")
        val = self.read_data(cname2lab, "images_variant_val.txt")
        test = self.read_data(cname2lab, "images_variant_test.txt")
        if self.train_split == "trainval":
            if osp.isfile(osp.join(self.dataset_dir, "images_variant_trainval.txt")):
                train = self.read_data(cname2lab, "images_variant_trainval.txt")
            else:
                train = train + val
        return train, val, test

    def stratified_order(self, train):
        """GalLoP uses torchvision's FGVCAircraft: list order, labels by ``variants.txt``."""
        return train, [item.label for item in train]

    @classmethod
    def inspect_raw(cls, report, root):
        dataset_dir, image_dir, _ = cls.paths(root)
        missing_raw = [r for r in cls.raw_files if not osp.isfile(osp.join(dataset_dir, r))]
        if missing_raw:
            report.escalate("error")
            report.lines.append(f"missing annotation files: {', '.join(missing_raw)}")
            report.advice.append("Extract fgvc-aircraft-2013b.tar.gz and use (rename) its data/ "
                                 f"folder as {dataset_dir}.")
            return
        classnames = read_lines(osp.join(dataset_dir, "variants.txt"))
        lists = {}
        for split in ("train", "val", "test"):
            lines = read_lines(osp.join(dataset_dir, f"images_variant_{split}.txt"))
            lists[split] = [osp.join(image_dir, line.partition(" ")[0] + ".jpg") for line in lines]
        add_split_counts(report, lists, cls.EXPECTED_COUNTS, FileIndex(),
                         source="images_variant_<split>.txt")
        add_class_count(report, len(classnames), cls.NUM_CLASSES)
