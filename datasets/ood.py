"""ImageNet OOD sets for SOT-GLP's OOD evaluation (DATASETS.md; MOS / MCM layout).

Test-only datasets, read with torchvision ``ImageFolder`` semantics (class = sorted sub-folder,
images found recursively with an image extension, sorted); the labels carry no meaning::

    $DATA/ood_data/iNaturalist/images/*.jpg      10,000 images
    $DATA/ood_data/SUN/images/*.jpg              10,000
    $DATA/ood_data/Places/images/*.jpg           10,000
    $DATA/ood_data/dtd/images/<47 classes>/*.jpg  5,640 (Textures)

Registered as ``OODiNaturalist``, ``OODSUN``, ``OODPlaces``, ``OODTextures``;
:func:`build_ood_datasets` returns all four in the order of the OOD result block.
"""
import os
import os.path as osp
from collections import OrderedDict

from dassl.data.datasets import DATASET_REGISTRY, Datum, DatasetBase

from .common import DatasetNotFoundError, DatasetReport, doc_hint, missing_report, require_dir

# torchvision.datasets.folder.IMG_EXTENSIONS
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
OOD_SECTION = "ImageNet OOD sets (iNaturalist, SUN, Places, Textures)"


def image_folder_items(root):
    """``ImageFolder(root)`` samples as Datum: label = index of the sorted class folder."""
    with os.scandir(root) as it:
        classes = sorted(e.name for e in it if e.is_dir())
    items = []
    for label, cls in enumerate(classes):
        for dirpath, _, fnames in sorted(os.walk(osp.join(root, cls), followlinks=True)):
            for fname in sorted(fnames):
                if fname.lower().endswith(IMG_EXTENSIONS):
                    items.append(Datum(impath=osp.join(dirpath, fname), label=label, classname=cls))
    return classes, items


class OODDataset(DatasetBase):
    """An OOD test set: ``train_x = test = images``, no val; NUM_SHOTS / SUBSAMPLE ignored."""

    ood_name = ""  # name in the OOD result block
    dataset_dir = ""  # path under DATASET.ROOT
    EXPECTED_IMAGES = None

    def __init__(self, cfg):
        self.root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = osp.join(self.root, type(self).dataset_dir)
        require_dir(self.dataset_dir, "OOD image folder", OOD_SECTION, self.root, type(self).__name__)
        classes, items = image_folder_items(self.dataset_dir)
        if not classes or not items:
            raise DatasetNotFoundError(
                f'{type(self).__name__}: "{self.dataset_dir}" has no image sub-folder with images '
                "(ImageFolder layout: <set>/images/*.jpg, or class folders for Textures). "
                + doc_hint(OOD_SECTION, self.root, type(self).__name__))
        super().__init__(train_x=items, test=items)

    @classmethod
    def inspect(cls, root):
        path = osp.join(root, cls.dataset_dir)
        report = DatasetReport(cls.__name__, path)
        if not osp.isdir(path):
            return missing_report(report, OOD_SECTION, root, path)
        classes, items = image_folder_items(path)
        line = f"images {len(items):>9,} in {len(classes)} folder(s)"
        if cls.EXPECTED_IMAGES is not None:
            line += f"  (MOS: {cls.EXPECTED_IMAGES:,})"
            if len(items) != cls.EXPECTED_IMAGES:
                report.escalate("warning")
        report.lines.append(line)
        if not items:
            report.escalate("error")
            report.advice.append("ImageFolder layout needed: put the images in an images/ "
                                 "sub-folder (class folders for Textures).")
        return report


@DATASET_REGISTRY.register()
class OODiNaturalist(OODDataset):
    """iNaturalist OOD subset (MOS, 110 plant classes disjoint from ImageNet)."""

    ood_name = "iNaturalist"
    dataset_dir = osp.join("ood_data", "iNaturalist")
    EXPECTED_IMAGES = 10000


@DATASET_REGISTRY.register()
class OODSUN(OODDataset):
    """SUN OOD subset (MOS)."""

    ood_name = "SUN"
    dataset_dir = osp.join("ood_data", "SUN")
    EXPECTED_IMAGES = 10000


@DATASET_REGISTRY.register()
class OODPlaces(OODDataset):
    """Places OOD subset (MOS)."""

    ood_name = "Places"
    dataset_dir = osp.join("ood_data", "Places")
    EXPECTED_IMAGES = 10000


@DATASET_REGISTRY.register()
class OODTextures(OODDataset):
    """Textures = all of DTD (47 class folders)."""

    ood_name = "Textures"
    dataset_dir = osp.join("ood_data", "dtd", "images")
    EXPECTED_IMAGES = 5640


OOD_DATASETS = OrderedDict((c.ood_name, c) for c in (OODiNaturalist, OODSUN, OODPlaces, OODTextures))


def build_ood_datasets(cfg, names=None):
    """OrderedDict OOD name -> dataset (default: iNaturalist, SUN, Places, Textures)."""
    names = list(names) if names else list(OOD_DATASETS)
    unknown = [n for n in names if n not in OOD_DATASETS]
    if unknown:
        raise ValueError(f"Unknown OOD set(s) {unknown}; available: {list(OOD_DATASETS)}")
    return OrderedDict((n, OOD_DATASETS[n](cfg)) for n in names)
