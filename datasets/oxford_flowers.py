"""Oxford Flowers-102 (102 classes; DATASETS.md).

``$DATA/oxford_flowers/{jpg/image_%05d.jpg, imagelabels.mat, cat_to_name.json,
split_zhou_OxfordFlowers.json}``. Without the split JSON: labels from ``imagelabels.mat``
(1-based), names from ``cat_to_name.json`` (keys ``"1"``..``"102"``), 50/20/30 per class.
"""
import os.path as osp
from collections import defaultdict

from dassl.data.datasets import DATASET_REGISTRY
from dassl.utils import read_json

from .common import CoOpDataset, split_groups


@DATASET_REGISTRY.register()
class OxfordFlowers(CoOpDataset):
    """Flowers-102 with CoOp's split."""

    dataset_dir = "oxford_flowers"
    image_subdir = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"
    raw_files = ("imagelabels.mat", "cat_to_name.json")
    NUM_CLASSES = 102
    EXPECTED_COUNTS = {"train": 4093, "val": 1633, "test": 2463}

    def read_raw_splits(self):
        from scipy.io import loadmat

        labels = loadmat(osp.join(self.dataset_dir, "imagelabels.mat"))["labels"][0]
        lab2cname = read_json(osp.join(self.dataset_dir, "cat_to_name.json"))
        tracker = defaultdict(list)  # mat label -> image paths, first-appearance order
        for i, label in enumerate(labels):
            tracker[int(label)].append(osp.join(self.image_dir, f"image_{i + 1:05d}.jpg"))
        print("Splitting data into 50% train, 20% val, and 30% test")
        groups = [(label - 1, lab2cname[str(label)], impaths) for label, impaths in tracker.items()]
        return split_groups(groups, p_trn=0.5, p_val=0.2)
