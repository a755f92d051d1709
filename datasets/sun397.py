"""SUN397 (397 scene classes; DATASETS.md).

``$DATA/sun397/{SUN397/, ClassName.txt, Training_01.txt, Testing_01.txt, split_zhou_SUN397.json}``.
Without the split JSON: labels by ``ClassName.txt`` order, ``Training_01.txt`` split 80/20 into
train/val, ``Testing_01.txt`` = test. Class name = the path components after the first-letter
folder, reversed and space-joined (``/a/apartment_building/outdoor`` -> ``outdoor
apartment_building``).
"""
import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .common import CoOpDataset, read_lines, split_trainval


def sun_classname(folder):
    """``"a/apartment_building/outdoor"`` -> ``"outdoor apartment_building"``."""
    return " ".join(folder.split("/")[1:][::-1])


@DATASET_REGISTRY.register()
class SUN397(CoOpDataset):
    """SUN397 with CoOp's split."""

    dataset_dir = "sun397"
    image_subdir = "SUN397"
    split_file = "split_zhou_SUN397.json"
    raw_files = ("ClassName.txt", "Training_01.txt", "Testing_01.txt")
    NUM_CLASSES = 397
    EXPECTED_COUNTS = {"train": 15880, "val": 3970, "test": 19850}

    def read_data(self, cname2lab, text_file):
        items = []
        for line in read_lines(osp.join(self.dataset_dir, text_file)):
            imname = line[1:]  # drop the leading "/"
            folder = osp.dirname(imname)
            items.append(Datum(impath=osp.join(self.image_dir, imname), label=cname2lab[folder],
                               classname=sun_classname(folder)))
        return items

    def read_raw_splits(self):
        classnames = [line[1:] for line in read_lines(osp.join(self.dataset_dir, "ClassName.txt"))]
        cname2lab = {c: i for i, c in enumerate(classnames)}
        trainval = self.read_data(cname2lab, "Training_01.txt")
        test = self.read_data(cname2lab, "Testing_01.txt")
        train, val = split_trainval(trainval)
        return train, val, test
