"""Caltech-101 (100 classes; DATASETS.md).

``$DATA/caltech-101/{101_ObjectCategories/<class>/*.jpg, split_zhou_Caltech101.json}``.
``BACKGROUND_Google`` and ``Faces_easy`` are ignored; ``NEW_CNAMES`` renames four classes.
"""
from dassl.data.datasets import DATASET_REGISTRY

from .common import CoOpDataset, read_and_split_data

IGNORED = ["BACKGROUND_Google", "Faces_easy"]
NEW_CNAMES = {
    "airplanes": "airplane",
    "Faces": "face",
    "Leopards": "leopard",
    "Motorbikes": "motorbike",
}


@DATASET_REGISTRY.register()
class Caltech101(CoOpDataset):
    """Caltech-101 with CoOp's split (train / val / test = 4,128 / 1,649 / 2,465)."""

    dataset_dir = "caltech-101"
    image_subdir = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"
    NUM_CLASSES = 100
    EXPECTED_COUNTS = {"train": 4128, "val": 1649, "test": 2465}

    def read_raw_splits(self):
        return read_and_split_data(self.image_dir, ignored=IGNORED, new_cnames=NEW_CNAMES)
