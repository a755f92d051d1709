"""ImageNet-Sketch (test only; DATASETS.md).

``$DATA/imagenet-sketch/images/<wnid>/`` (1000 folders) + ``classnames.txt`` (optional: the
shipped copy is used if absent). Labels = index of the sorted folders.
"""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet import SortedFolderVariant


@DATASET_REGISTRY.register()
class ImageNetSketch(SortedFolderVariant):
    """ImageNet-Sketch: 50,889 sketches of the 1000 ImageNet classes."""

    dataset_dir = "imagenet-sketch"
    image_subdir = "images"
    NUM_CLASSES = 1000
    EXPECTED_IMAGES = 50889

    @classmethod
    def expected_folders(cls, classnames):
        return sorted(classnames)
