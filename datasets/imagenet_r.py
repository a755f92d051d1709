"""ImageNet-R (test only, a 200-class problem; DATASETS.md).

``$DATA/imagenet-rendition/imagenet-r/<wnid>/`` (200 folders; ``README.txt`` ignored) +
``classnames.txt`` (optional: the shipped 1000-line copy is used if absent). Labels 0..199 by
sorted folder; names looked up by wnid.
"""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet import SortedFolderVariant
from .meta import coop_meta

TO_BE_IGNORED = ["README.txt"]


@DATASET_REGISTRY.register()
class ImageNetR(SortedFolderVariant):
    """ImageNet-R: 30,000 renditions (art, cartoons, ...) of 200 ImageNet classes."""

    dataset_dir = "imagenet-rendition"
    image_subdir = "imagenet-r"
    ignored = TO_BE_IGNORED
    NUM_CLASSES = 200
    EXPECTED_IMAGES = 30000

    @classmethod
    def expected_folders(cls, classnames):
        return coop_meta()["ImageNetR_wnids"]
