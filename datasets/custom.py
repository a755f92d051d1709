"""Your own data without code: ``DATASET.NAME ImageFolder`` and ``DATASET.NAME CSVDataset``.

``ImageFolder``: one folder per class under the data folder (``DATASET.ROOT``, or ``DATASET.FOLDER`` below
it), or the same already split into ``train/``, ``test/`` and optionally ``val/``. ``CSVDataset``: a CSV file
(``DATASET.CSV_FILE``, default ``data.csv`` in the data folder) with rows ``path,label`` or
``path,label,split`` (``split`` in train / val / test), paths relative to the CSV file; a first row
``path,label[,split]`` is read as a header.

Class names come from the folder names or labels (``_`` -> space), or from ``DATASET.CLASSNAMES_FILE``
(``<folder or label> <class name>`` per line; its order is the label order). Labels are numbered in sorted
order otherwise (numerically when every label is a number). The first time, a split file
``split_zhou_<Name>.json`` in CoOp's format is written into the data folder: unsplit data is split per class
with ``DATASET.SPLIT_RATIOS`` (train, val; the rest is test), a missing val split is carved from train, both
seeded with ``DATASET.SPLIT_SEED``. Later runs reuse it (it is never overwritten) after checking that it still
lists exactly the images of the folder / CSV. From there on everything is :class:`~datasets.common.CoOpDataset`'s:
few-shot caches in ``split_fewshot/``, base/new subsampling, file checks.
"""
import csv
import os
import os.path as osp
import random
from collections import Counter

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .common import (
    SPLIT_KEYS, CoOpDataset, DatasetError, DatasetReport, _load_json, add_class_count, add_split_counts,
    cfg_get, inspect_caches, read_split, save_split, split_groups, split_trainval,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
DOC = 'README, section "Your own dataset"'


class InvalidDataError(DatasetError, ValueError):
    """Your own data cannot be used as it is; the message names the file / class / value and the fix."""


def is_image(name):
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def to_classname(label):
    return label.replace("_", " ").strip()


def read_classnames_file(path, name):
    """``{key: class name}`` from ``<key> <class name>`` lines, in file order (``#`` starts a comment)."""
    names = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            key, _, cname = line.partition(" ")
            if not cname.strip():
                raise InvalidDataError(f'{name}: line {n} of the class-name file "{path}" is "{line}": expected '
                                       '"<folder or label> <class name>".')
            if key in names:
                raise InvalidDataError(f'{name}: "{key}" appears twice in the class-name file "{path}" '
                                       f"(line {n}); keep one line per class.")
            names[key] = cname.strip()
    return names


def unreadable_images(paths):
    """``[(path, reason)]`` of the files PIL cannot identify as images (reads the headers only)."""
    from PIL import Image

    bad = []
    for p in paths:
        try:
            with Image.open(p) as img:
                img.size
        except Exception as e:  # PIL raises many kinds
            bad.append((p, str(e) or type(e).__name__))
    return bad


class OwnDataset(CoOpDataset):
    """Shared by :class:`ImageFolder` and :class:`CSVDataset`: labels, class names, split file, checks."""

    check_by_default = False  # python -m datasets.check inspects it only when named
    split_file = None  # set per class: split_zhou_<Name>.json

    # ---- paths: the data folder is DATASET.ROOT[/DATASET.FOLDER] ----------------------------------------
    def __init__(self, cfg):
        self.folder = cfg_get(cfg, "FOLDER", "")
        super().__init__(cfg)

    def paths(self, root):
        data_dir = osp.normpath(osp.join(root, getattr(self, "folder", "") or ""))
        return data_dir, data_dir, osp.join(data_dir, self.split_file)

    @classmethod
    def section(cls):
        return "Your own dataset"

    def error(self, msg):
        return InvalidDataError(f"{type(self).__name__}: {msg}")

    # ---- what the subclasses provide -----------------------------------------------------------------
    def read_source(self):
        """``(entries, given_split, source)``: ``entries`` = ``[(absolute path, raw label, split or None)]``."""
        raise NotImplementedError

    # ---- labels and class names ------------------------------------------------------------------------
    def label_order(self, raw_labels):
        """``(ordered raw labels, {raw label: class name})`` from the class-name file or the labels."""
        cfile = cfg_get(self.cfg, "CLASSNAMES_FILE", "")
        present = set(raw_labels)
        if cfile:
            path = cfile if osp.isabs(cfile) else osp.join(self.dataset_dir, cfile)
            if not osp.isfile(path):
                raise self.error(f'the class-name file "{path}" (DATASET.CLASSNAMES_FILE) does not exist; give a '
                                 "path relative to the data folder or an absolute one.")
            names = read_classnames_file(path, type(self).__name__)
            missing = sorted(present - set(names))
            if missing:
                raise self.error(f'{len(missing)} label(s) are missing from the class-name file "{path}", first '
                                 f'"{missing[0]}": add a line "{missing[0]} <class name>" for each.')
            return [k for k in names if k in present], names
        if all(lab.lstrip("-").isdigit() for lab in present):
            raise self.error(f"the labels are numbers ({', '.join(sorted(present, key=int)[:3])}, ...); CLIP needs "
                             "class names: give a class-name file (DATASET.CLASSNAMES_FILE) with lines "
                             '"<label> <class name>".')
        return sorted(present), {lab: to_classname(lab) for lab in present}

    def to_datums(self, entries):
        """``{split: [Datum]}`` (split None for unsplit entries) with labels numbered as :meth:`label_order`."""
        order, names = self.label_order([e[1] for e in entries])
        cnames = [names[k] for k in order]
        dup = [c for c, n in Counter(cnames).items() if n > 1]
        if dup:
            raise self.error(f'two classes have the class name "{dup[0]}" (after "_" -> " "); rename one of '
                             "them or give distinct names in a class-name file (DATASET.CLASSNAMES_FILE).")
        label = {k: i for i, k in enumerate(order)}
        out = {}
        for path, raw, split in entries:
            out.setdefault(split, []).append(Datum(impath=path, label=label[raw], classname=names[raw]))
        return out

    # ---- the split file ----------------------------------------------------------------------------
    def make_split(self, entries, given_split):
        ratios = tuple(cfg_get(self.cfg, "SPLIT_RATIOS", (0.5, 0.2)))
        if len(ratios) != 2 or not (ratios[0] > 0 and ratios[1] > 0 and sum(ratios) < 1):
            raise self.error(f"DATASET.SPLIT_RATIOS must be (train, val) fractions, each > 0, summing to < 1 "
                             f"(the rest is test); got {ratios}.")
        bad = unreadable_images([e[0] for e in entries])
        if bad:
            raise self.error(f'{len(bad)} of {len(entries)} files cannot be read as images, first "{bad[0][0]}" '
                             f"({bad[0][1]}): remove or replace them, then rerun.")
        by_split = self.to_datums(entries)
        state = random.getstate()  # a seeded split that leaves the run's random stream untouched
        random.seed(cfg_get(self.cfg, "SPLIT_SEED", 1))
        try:
            if given_split:
                return self._given_split(by_split, ratios[1])
            groups = {}
            for d in by_split[None]:
                groups.setdefault(d.label, (d.label, d.classname, []))[2].append(d.impath)
            for _, _, paths in groups.values():
                paths.sort()  # the listing order of a file system is not reproducible
            try:
                return split_groups([groups[k] for k in sorted(groups)], *ratios)
            except ValueError as e:
                raise self.error(f"{e} Add images to that class or change DATASET.SPLIT_RATIOS.") from e
        finally:
            random.setstate(state)

    def _given_split(self, by_split, p_val):
        train, test = by_split.get("train", []), by_split.get("test", [])
        labels = {d.label: d.classname for part in by_split.values() for d in part}
        for split, items in (("train", train), ("test", test)):
            missing = sorted(set(labels) - {d.label for d in items})
            if missing:
                raise self.error(f'class "{labels[missing[0]]}" has no {split} images ({len(missing)} class(es) '
                                 f"without); every class needs train and test images.")
        val = by_split.get("val")
        if val is None:
            try:
                train, val = split_trainval(sorted(train, key=lambda d: (d.label, d.impath)), p_val)
            except ValueError as e:
                raise self.error(f"{e} Add a val split, more train images, or raise the val fraction of "
                                 "DATASET.SPLIT_RATIOS.") from e
        return train, val, test

    def read_splits(self):
        entries, given_split, source = self.read_source()
        if osp.exists(self.split_path):
            train, val, test = read_split(self.split_path, self.image_dir)
            self.check_split_file([d.impath for d in train + val + test], entries, source)
            src = self.split_path
        else:
            train, val, test = self.make_split(entries, given_split)
            save_split(train, val, test, self.split_path, self.image_dir)
            src = f"{source} (new split {self.split_path})"
        return train, val, test, {"train": src, "val": src, "test": src}

    def check_split_file(self, paths, entries, source):
        """The split file must list exactly the images of the source (else: say so, never rewrite it)."""
        listed = set(paths)
        present = {e[0] for e in entries}
        if listed == present:
            return
        extra, new = sorted(listed - present), sorted(present - listed)
        what = (f'{len(extra)} image(s) it lists are no longer in {source} (first "{extra[0]}")' if extra else
                f'{len(new)} image(s) of {source} are not in it (first "{new[0]}")')
        raise self.error(f'the split file "{self.split_path}" was made from other data: {what}. Move it away to '
                         "make a new split (results then change), or restore the data it was made from.")

    # ---- few-shot: refuse too few images instead of silently using fewer --------------------------------
    def fewshot(self, train, val):
        k = self.cfg.DATASET.NUM_SHOTS
        if k >= 1:
            counts = Counter(d.label for d in train)
            names = {d.label: d.classname for d in train}
            short = sorted((n, lab) for lab, n in counts.items() if n < k)
            if short:
                n, lab = short[0]
                raise self.error(f'class "{names[lab]}" has {n} training image(s), fewer than DATASET.NUM_SHOTS '
                                 f"{k} ({len(short)} class(es) short): add images, lower NUM_SHOTS, or give "
                                 "train a larger share (DATASET.SPLIT_RATIOS).")
        return super().fewshot(train, val)

    # ---- checker ----------------------------------------------------------------------------------
    @classmethod
    def inspect(cls, root):
        """``python -m datasets.check --root <data folder> ImageFolder``: source, split file, counts."""
        from dassl.config import get_cfg_default

        from trainers.config import extend_cfg

        cfg = extend_cfg(get_cfg_default())
        cfg.DATASET.ROOT = root
        self = cls.__new__(cls)
        self.cfg, self.folder, self.root = cfg, "", osp.abspath(root)
        self.dataset_dir, self.image_dir, self.split_path = self.paths(self.root)
        report = DatasetReport(cls.__name__, self.dataset_dir)
        try:
            entries, given, source = self.read_source()
            by_split = self.to_datums(entries)
        except (DatasetError, OSError) as e:
            report.escalate("error")
            report.lines.append(str(e))
            report.advice.append(f"See the {DOC}.")
            return report
        n_classes = len({d.label for part in by_split.values() for d in part})
        report.lines.append(f"source {source}: {len(entries):,} images, "
                            + ("split given (" + ", ".join(f"{k} {len(v):,}" for k, v in by_split.items()) + ")"
                               if given else "unsplit"))
        if osp.isfile(self.split_path):
            split = _load_json(self.split_path)
            lists = {k: [osp.join(self.image_dir, e[0]) for e in split[k]] for k in SPLIT_KEYS}
            report.lines.append(f"split file {self.split_path}")
            add_split_counts(report, lists)
            try:
                self.check_split_file([p for v in lists.values() for p in v], entries, source)
            except InvalidDataError as e:
                report.escalate("error")
                report.lines.append(str(e))
        else:
            report.lines.append(f"split file {self.split_path}: not written yet (the first run writes it with "
                                "DATASET.SPLIT_RATIOS and DATASET.SPLIT_SEED)")
        add_class_count(report, n_classes, None)
        inspect_caches(report, self.dataset_dir, self.image_dir)
        return report


@DATASET_REGISTRY.register()
class ImageFolder(OwnDataset):
    """One folder per class (``<data>/<class>/*.jpg``), or ``<data>/{train,val,test}/<class>/*.jpg``."""

    split_file = "split_zhou_ImageFolder.json"

    def read_source(self):
        top = self.dataset_dir
        split_dirs = [s for s in SPLIT_KEYS if osp.isdir(osp.join(top, s))]
        given = bool(split_dirs)
        if given and not {"train", "test"} <= set(split_dirs):
            raise self.error(f'"{top}" has {"/".join(split_dirs)}/ but not both train/ and test/: give train/ and '
                             "test/ (val/ optional), or one folder per class without split folders.")
        entries = []
        for split in split_dirs or [None]:
            folder = osp.join(top, split) if split else top
            classes = sorted(d for d in os.listdir(folder)
                             if not d.startswith(".") and d != "split_fewshot" and osp.isdir(osp.join(folder, d)))
            if not classes:
                raise self.error(f'"{folder}" holds no class folders: put the images of each class in a folder '
                                 "named after the class.")
            for cls_name in classes:
                cdir = osp.join(folder, cls_name)
                images = sorted(f for f in os.listdir(cdir) if is_image(f))
                if not images:
                    raise self.error(f'the class folder "{cdir}" has no images ({", ".join(IMAGE_EXTENSIONS)}): '
                                     "add images or remove the folder.")
                entries += [(osp.join(cdir, f), cls_name, split) for f in images]
        return entries, given, top


@DATASET_REGISTRY.register()
class CSVDataset(OwnDataset):
    """Rows ``path,label[,split]`` of a CSV file, paths relative to it."""

    split_file = "split_zhou_CSVDataset.json"
    HEADER = ("path", "label", "split")

    def read_source(self):
        name = cfg_get(self.cfg, "CSV_FILE", "data.csv")
        path = name if osp.isabs(name) else osp.join(self.dataset_dir, name)
        if not osp.isfile(path):
            raise self.error(f'the CSV file "{path}" does not exist: write one with "path,label[,split]" rows into '
                             "the data folder, or name yours with DATASET.CSV_FILE.")
        base = osp.dirname(path)
        with open(path, newline="") as f:
            rows = [(n, [c.strip() for c in row]) for n, row in enumerate(csv.reader(f), 1) if any(row)]
        if rows and tuple(c.lower() for c in rows[0][1]) == self.HEADER[:len(rows[0][1])]:
            rows = rows[1:]
        if not rows:
            raise self.error(f'the CSV file "{path}" has no rows: expected "path,label[,split]" lines.')
        width = len(rows[0][1])
        if width not in (2, 3):
            raise self.error(f'row {rows[0][0]} of "{path}" has {width} column(s): expected "path,label" or '
                             '"path,label,split" rows.')
        columns = ",".join(self.HEADER[:width])
        entries, seen = [], {}
        for n, row in rows:
            if len(row) != width or not all(row):
                raise self.error(f'row {n} of "{path}" is "{",".join(row)}": expected {width} non-empty columns '
                                 f"{columns}, as on the first row.")
            rel, label = row[0], row[1]
            split = row[2].lower() if width == 3 else None
            if split is not None and split not in SPLIT_KEYS:
                raise self.error(f'row {n} of "{path}": split "{row[2]}" is not one of train, val, test.')
            impath = osp.normpath(osp.join(base, rel))
            if not impath.startswith(self.image_dir + os.sep):
                raise self.error(f'row {n} of "{path}": the image "{impath}" lies outside the data folder '
                                 f'"{self.image_dir}"; keep the images below it (the split file stores relative '
                                 "paths).")
            if impath in seen:
                raise self.error(f'"{rel}" is listed twice in "{path}" (rows {seen[impath]} and {n}); keep one row '
                                 "per image.")
            seen[impath] = n
            if not osp.isfile(impath):
                raise self.error(f'row {n} of "{path}": the image "{impath}" does not exist (paths are relative to '
                                 "the CSV file).")
            entries.append((impath, label, split))
        return entries, width == 3, path
