"""ImageNet-A (test only, a 200-class problem; DATASETS.md).

``$DATA/imagenet-adversarial/imagenet-a/<wnid>/`` (200 folders; ``README.txt`` ignored) +
``classnames.txt`` (optional: the shipped 1000-line copy is used if absent). Labels 0..199 by
sorted folder; names looked up by wnid, so models are evaluated with text features of only these
200 classes.
"""
from dassl.data.datasets import DATASET_REGISTRY

from .imagenet import SortedFolderVariant
from .meta import coop_meta

TO_BE_IGNORED = ["README.txt"]


@DATASET_REGISTRY.register()
class ImageNetA(SortedFolderVariant):
    """ImageNet-A: 7,500 natural adversarial images of 200 ImageNet classes."""

    dataset_dir = "imagenet-adversarial"
    image_subdir = "imagenet-a"
    ignored = TO_BE_IGNORED
    NUM_CLASSES = 200
    EXPECTED_IMAGES = 7500

    @classmethod
    def expected_folders(cls, classnames):
        return coop_meta()["ImageNetA_wnids"]
