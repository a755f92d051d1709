"""ImageNet-1k (1000 classes; DATASETS.md) and the class-name file the variants share.

``$DATA/imagenet/images/{train,val}/<wnid>/*.JPEG`` (``val`` must be sorted into the 1000 wnid
folders) and ``classnames.txt`` (``<wnid> <class name words>`` per line). ``classnames.txt`` is
optional here: when the dataset folder has none, the copy shipped in this package
(``datasets/imagenet_classnames.txt``, located from this file, not from the working directory)
is used.

Labels = index of the sorted wnid folders of ``images/train``; test = ``images/val`` (also used as
val). ``imagenet/preprocessed.pkl`` caches ``{"train", "test"}`` so later runs do not list 1.28 M
files; ``split_fewshot/shot_{K}-seed_{S}.pkl`` holds only ``{"train"}``.
"""
import os
import os.path as osp
import warnings
from collections import OrderedDict

from dassl.data.datasets import DATASET_REGISTRY, Datum
from dassl.utils import listdir_nohidden

from .common import (
    CoOpDataset, DatasetNotFoundError, DatasetReport, FileIndex, ImageGroup, SplitFileError,
    cfg_get, doc_hint, finish_report, gc_paused, inspect_caches, load_pickle, missing_report, save_pickle,
    subsample_classes, verify_files, warn_if_foreign,
)

SHIPPED_CLASSNAMES = osp.join(osp.dirname(osp.abspath(__file__)), "imagenet_classnames.txt")


def read_classnames(text_file):
    """OrderedDict wnid -> class name from a ``classnames.txt`` (``<wnid> <words...>`` lines)."""
    classnames = OrderedDict()
    try:
        with open(text_file, "r") as f:
            for line in f:
                parts = line.strip().split(" ")
                if parts and parts[0]:
                    classnames[parts[0]] = " ".join(parts[1:])
    except OSError as e:
        raise DatasetNotFoundError(f'Cannot read the class-name file "{text_file}": {e}') from e
    return classnames


def classnames_file(dataset_dir):
    """``<dataset_dir>/classnames.txt`` if present, else the copy shipped with the repository."""
    own = osp.join(dataset_dir, "classnames.txt")
    return own if osp.isfile(own) else SHIPPED_CLASSNAMES


def load_classnames(dataset_dir):
    """The wnid -> name mapping for an ImageNet-style dataset folder (see :func:`classnames_file`)."""
    path = classnames_file(dataset_dir)
    if path == SHIPPED_CLASSNAMES:
        print(f"Using the class names shipped with the repository ({SHIPPED_CLASSNAMES}); "
              f"{osp.join(dataset_dir, 'classnames.txt')} not found")
    return read_classnames(path), path


def sorted_subdirs(folder):
    """Sorted names of the sub-folders of ``folder`` (``os.scandir``, directories only)."""
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir())


def read_class_folders(split_dir, folders, classnames, labels=None, classname_file=""):
    """Datum list over ``split_dir/<folder>/<image>`` (image order = unsorted ``listdir``).

    ``labels[i]`` (default ``i``) is the label of ``folders[i]``; names come from ``classnames``
    keyed by folder (wnid).
    """
    unknown = [f for f in folders if f not in classnames]
    if unknown:
        raise SplitFileError(f'{len(unknown)} class folder(s) of "{split_dir}" are not in the '
                             f'class-name file "{classname_file}": {", ".join(unknown[:5])}')
    items = []
    for i, folder in enumerate(folders):
        label = i if labels is None else labels[i]
        classname = classnames[folder]
        folder_dir = osp.join(split_dir, folder)
        items.extend(Datum(impath=osp.join(folder_dir, imname), label=label, classname=classname)
                     for imname in listdir_nohidden(folder_dir))
    return items


@DATASET_REGISTRY.register()
class ImageNet(CoOpDataset):
    """ImageNet-1k (train / val folders; no split JSON)."""

    dataset_dir = "imagenet"
    image_subdir = "images"
    split_file = None
    fewshot_with_val = False
    NUM_CLASSES = 1000
    EXPECTED_COUNTS = {"train": 1281167, "test": 50000}

    read_classnames = staticmethod(read_classnames)

    def __init__(self, cfg):
        self.cfg = cfg
        self.root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir, self.image_dir, _ = self.paths(self.root)
        self.split_path = None
        self.preprocessed = osp.join(self.dataset_dir, "preprocessed.pkl")
        self.split_fewshot_dir = osp.join(self.dataset_dir, "split_fewshot")
        self._require_dir(self.dataset_dir, "dataset folder",
                          extra=f'(DATASET.ROOT is "{self.root}".)')
        try:
            os.makedirs(self.split_fewshot_dir, exist_ok=True)
        except OSError as e:
            warnings.warn(f'Cannot create "{self.split_fewshot_dir}" ({e}); caches will not be '
                          "written.")

        with gc_paused():  # 1.33 M Datum objects: no cyclic GC passes while building them
            groups = []
            if osp.exists(self.preprocessed):
                data = load_pickle(self.preprocessed, ("train", "test"))
                warn_if_foreign(self.preprocessed, data["train"], self.dataset_dir)
                train, test = data["train"], data["test"]
                from_cache = True
            else:
                train, test = self.read_folders()
                save_pickle({"train": train, "test": test}, self.preprocessed)
                from_cache = False

            train, _, cache_groups, save_cache = self.fewshot(train, None)
            # Images listed from the folders exist by construction; cached lists may be stale.
            if cache_groups:
                groups += cache_groups
            elif from_cache:
                groups.append(ImageGroup("train", train, self.preprocessed, is_cache=True))
            if from_cache:
                groups.append(ImageGroup("test", test, self.preprocessed, is_cache=True))
            if groups and cfg_get(cfg, "CHECK_FILES", True):
                verify_files(groups, "ImageNet", self.section(), self.root, self.dataset_dir)
            save_cache()

            subsample = cfg_get(cfg, "SUBSAMPLE_CLASSES", "all")
            train, test = subsample_classes(train, test, subsample=subsample)
        super(CoOpDataset, self).__init__(train_x=train, val=test, test=test)

    def read_folders(self):
        """``(train, test)`` from ``images/train`` and ``images/val`` (wnid sub-folders)."""
        train_dir = self._require_dir(osp.join(self.image_dir, "train"), "training image folder")
        val_dir = self._require_dir(osp.join(self.image_dir, "val"), "validation image folder")
        folders = sorted_subdirs(train_dir)
        val_folders = sorted_subdirs(val_dir)
        if not val_folders:
            raise DatasetNotFoundError(
                f'ImageNet: "{val_dir}" has no wnid sub-folders. The validation images must be '
                "sorted into the 1000 class folders (n01440764/, ...), like images/train. "
                + doc_hint(self.section(), self.root, "ImageNet"))
        if not folders:
            raise DatasetNotFoundError(f'ImageNet: "{train_dir}" has no wnid sub-folders. '
                                       + doc_hint(self.section(), self.root, "ImageNet"))
        if val_folders != folders:
            raise DatasetNotFoundError(
                f'ImageNet: the class folders of "{val_dir}" ({len(val_folders)}) differ from those '
                f'of "{train_dir}" ({len(folders)}); labels would not match. '
                + doc_hint(self.section(), self.root, "ImageNet"))
        classnames, path = load_classnames(self.dataset_dir)
        with gc_paused():
            train = read_class_folders(train_dir, folders, classnames, classname_file=path)
            test = read_class_folders(val_dir, folders, classnames, classname_file=path)
        return train, test

    def stratified_order(self, train):
        """GalLoP reads ImageNet with ``ImageFolder``: sorted by class, then by file name."""
        items = sorted(train, key=lambda d: (d.label, d.impath))
        return items, [d.label for d in items]

    @classmethod
    def inspect(cls, root):
        dataset_dir, image_dir, _ = cls.paths(root)
        report = DatasetReport(cls.__name__, dataset_dir)
        if not osp.isdir(dataset_dir):
            return missing_report(report, cls.section(), root, dataset_dir)
        folders = {}
        for split in ("train", "val"):
            split_dir = osp.join(image_dir, split)
            if not osp.isdir(split_dir):
                report.escalate("error")
                report.lines.append(f"{split:<6} folder missing: {split_dir}")
                continue
            subdirs = sorted_subdirs(split_dir)
            folders[split] = subdirs
            index = FileIndex()
            n = sum(len(index.listing(osp.join(split_dir, d)) or ()) for d in subdirs)
            exp = cls.EXPECTED_COUNTS["train" if split == "train" else "test"]
            line = f"{split:<6} {n:>9,} images in {len(subdirs)} class folders  (expected {exp:,} in 1000)"
            report.lines.append(line)
            if len(subdirs) != cls.NUM_CLASSES or n != exp:
                report.escalate("warning")
            if split == "val" and not subdirs:
                report.escalate("error")
                report.advice.append(f"Sort {split_dir} into the 1000 wnid sub-folders.")
        if "train" in folders and "val" in folders and folders["train"] != folders["val"]:
            report.escalate("error")
            report.lines.append("train and val class folders differ")
        own = osp.join(dataset_dir, "classnames.txt")
        names = read_classnames(classnames_file(dataset_dir))
        report.lines.append(f"classnames.txt {'present' if osp.isfile(own) else 'absent (the shipped copy is used)'}"
                            f", {len(names)} classes")
        unknown = [f for f in folders.get("train", []) if f not in names]
        if unknown:
            report.escalate("error")
            report.lines.append(f"{len(unknown)} train folders not in classnames.txt: {', '.join(unknown[:5])}")
        inspect_caches(report, dataset_dir, image_dir)
        finish_report(report, cls.section(), root)
        if report.status == "error" and not report.advice:
            report.advice.append(f'See DATASETS.md, section "{cls.section()}".')
        return report


class ImageNetVariant(CoOpDataset):
    """Base of the test-only ImageNet variants (DATASETS.md).

    NUM_SHOTS and SUBSAMPLE_CLASSES are ignored, no ``split_fewshot/`` is created; the data are
    both ``train_x`` and ``test`` (no val). Subclasses implement :meth:`class_folders`.
    """

    EXPECTED_IMAGES = None

    def __init__(self, cfg):
        self.cfg = cfg
        self.root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir, self.image_dir, _ = self.paths(self.root)
        self._require_dir(self.dataset_dir, "dataset folder",
                          extra=f'(DATASET.ROOT is "{self.root}".)')
        self._require_dir(self.image_dir, "image folder")
        classnames, path = load_classnames(self.dataset_dir)
        folders, labels = self.class_folders(classnames)
        data = read_class_folders(self.image_dir, folders, self.folder_names(classnames), labels,
                                  classname_file=path)
        super(CoOpDataset, self).__init__(train_x=data, test=data)

    def class_folders(self, classnames):
        """``(folder names, labels)`` in label order."""
        raise NotImplementedError

    def folder_names(self, classnames):
        """Mapping folder name -> class name (default: folders are wnids)."""
        return classnames

    @classmethod
    def expected_folders(cls, classnames):
        """The folder names a complete copy has (None: not checked)."""
        return None

    @classmethod
    def inspect(cls, root):
        dataset_dir, image_dir, _ = cls.paths(root)
        report = DatasetReport(cls.__name__, dataset_dir)
        if not osp.isdir(dataset_dir):
            return missing_report(report, cls.section(), root, dataset_dir)
        if not osp.isdir(image_dir):
            report.escalate("error")
            report.lines.append(f"image folder missing: {image_dir}")
            report.advice.append(f'See DATASETS.md, section "{cls.section()}".')
            return report
        own = osp.join(dataset_dir, "classnames.txt")
        names = read_classnames(classnames_file(dataset_dir))
        subdirs = sorted_subdirs(image_dir)
        index = FileIndex()
        n = sum(len(index.listing(osp.join(image_dir, d)) or ()) for d in subdirs)
        exp_folders = cls.expected_folders(names)
        line = f"images {n:>9,} in {len(subdirs)} class folders"
        if cls.EXPECTED_IMAGES is not None:
            line += f"  (expected {cls.EXPECTED_IMAGES:,}"
            line += f" in {len(exp_folders)})" if exp_folders is not None else ")"
            if n != cls.EXPECTED_IMAGES:
                report.escalate("warning")
        report.lines.append(line)
        if exp_folders is not None:
            absent = [f for f in exp_folders if f not in set(subdirs)]
            extra = [f for f in subdirs if f not in set(exp_folders)]
            if absent or extra:
                report.escalate("incomplete" if absent else "warning")
                if absent:
                    report.lines.append(f"{len(absent)} class folder(s) missing: {', '.join(absent[:5])}")
                if extra:
                    report.lines.append(f"{len(extra)} unexpected folder(s): {', '.join(extra[:5])}")
        report.lines.append(f"classnames.txt {'present' if osp.isfile(own) else 'absent (the shipped copy is used)'}"
                            f", {len(names)} classes")
        if report.status != "ok":
            report.advice.append(f'Compare with DATASETS.md, section "{cls.section()}".')
        return report


class SortedFolderVariant(ImageNetVariant):
    """Labels = index of the sorted wnid folders (Sketch, -A, -R); names looked up by wnid."""

    ignored = ()

    def class_folders(self, classnames):
        folders = [f for f in listdir_nohidden(self.image_dir, sort=True) if f not in self.ignored
                   and osp.isdir(osp.join(self.image_dir, f))]
        return folders, list(range(len(folders)))
