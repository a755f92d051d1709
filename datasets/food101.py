"""Food-101 (101 classes; DATASETS.md).

``$DATA/food-101/{images/<class>/*.jpg, meta/, split_zhou_Food101.json}``. Without the split JSON:
:func:`datasets.common.read_and_split_data` (50/20/30); class names = folder names.
"""
from dassl.data.datasets import DATASET_REGISTRY

from .common import CoOpDataset, read_and_split_data


@DATASET_REGISTRY.register()
class Food101(CoOpDataset):
    """Food-101 with CoOp's split."""

    dataset_dir = "food-101"
    image_subdir = "images"
    split_file = "split_zhou_Food101.json"
    NUM_CLASSES = 101
    EXPECTED_COUNTS = {"train": 50500, "val": 20200, "test": 30300}

    def read_raw_splits(self):
        return read_and_split_data(self.image_dir)
