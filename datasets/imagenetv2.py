"""ImageNetV2 matched-frequency (test only; DATASETS.md).

``$DATA/imagenetv2/imagenetv2-matched-frequency-format-val/<i>/`` for i = 0..999 +
``classnames.txt`` (optional: the shipped copy is used if absent). Label i = folder ``str(i)``,
class name = the i-th entry of ``classnames.txt`` (which must be in sorted-wnid order, as CoOp's
and the shipped copy are).
"""
import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY

from .common import DatasetNotFoundError, doc_hint
from .imagenet import ImageNetVariant


@DATASET_REGISTRY.register()
class ImageNetV2(ImageNetVariant):
    """ImageNetV2 (10,000 images, folders named by label)."""

    dataset_dir = "imagenetv2"
    image_subdir = "imagenetv2-matched-frequency-format-val"
    NUM_CLASSES = 1000
    EXPECTED_IMAGES = 10000

    def class_folders(self, classnames):
        wnids = list(classnames)
        if wnids != sorted(wnids):
            raise DatasetNotFoundError(
                f'ImageNetV2: the class-name file of "{self.dataset_dir}" is not in sorted-wnid '
                "order, so folder i would get the wrong class name. Use CoOp's classnames.txt (or "
                "delete it to use the shipped copy). "
                + doc_hint(self.section(), self.root, "ImageNetV2"))
        folders = [str(i) for i in range(len(wnids))]
        absent = [f for f in folders if not osp.isdir(osp.join(self.image_dir, f))]
        if absent:
            raise DatasetNotFoundError(
                f'ImageNetV2: {len(absent)} of the {len(folders)} class folders "0".."{len(folders) - 1}" '
                f'are missing in "{self.image_dir}" (e.g. {", ".join(absent[:5])}). '
                + doc_hint(self.section(), self.root, "ImageNetV2"))
        return folders, list(range(len(folders)))

    def folder_names(self, classnames):
        """Folder ``str(i)`` -> the i-th class name of the file."""
        return {str(i): name for i, name in enumerate(classnames.values())}

    @classmethod
    def expected_folders(cls, classnames):
        return sorted(str(i) for i in range(len(classnames)))
