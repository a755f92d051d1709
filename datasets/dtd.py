"""Describable Textures (47 classes; DATASETS.md).

``$DATA/dtd/{images/<class>/*.jpg, imdb/, labels/, split_zhou_DescribableTextures.json}``. Without
the split JSON: :func:`datasets.common.read_and_split_data` (sorted class folders, 50/20/30).
"""
from dassl.data.datasets import DATASET_REGISTRY

from .common import CoOpDataset, read_and_split_data


@DATASET_REGISTRY.register()
class DescribableTextures(CoOpDataset):
    """DTD with CoOp's split."""

    dataset_dir = "dtd"
    image_subdir = "images"
    split_file = "split_zhou_DescribableTextures.json"
    NUM_CLASSES = 47
    EXPECTED_COUNTS = {"train": 2820, "val": 1128, "test": 1692}

    # CoOp API: ``DescribableTextures.read_and_split_data(image_dir, ...)`` (used by other files).
    read_and_split_data = staticmethod(read_and_split_data)

    def read_raw_splits(self):
        return read_and_split_data(self.image_dir)
