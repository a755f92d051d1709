"""Shared machinery of the CoOp benchmark datasets (DATASETS.md).

Every dataset file is a thin subclass of :class:`CoOpDataset` (or, for the test-only sets, builds
on the folder helpers here). This module holds, once:

* clear errors that name the path expected and the DATASETS.md section (:func:`require_dir`, ...);
* bulk existence checks (:func:`find_missing`, :func:`verify_files`): one directory listing per
  folder instead of one ``stat`` per image, so a 1.28 M-entry split is checked in seconds and a
  split that points to missing files is reported once, with counts;
* the split-file format (:func:`read_split`, :func:`save_split`) and the split creators used when
  a dataset has no ``split_zhou_*.json`` (:func:`split_trainval`, :func:`read_and_split_data`,
  :func:`split_groups`);
* base/new subsampling (:func:`subsample_classes`);
* few-shot caches ``split_fewshot/shot_{K}-seed_{S}.pkl`` (Dassl's per-class sampler) and the
  SOT-GLP ``stratified_proportional`` sampler (:func:`stratified_train_indices`, a NumPy
  re-implementation of scikit-learn's ``StratifiedShuffleSplit`` draw order).

Datum objects are created without ``stat`` (see ``dassl.data.datasets.base_dataset.Datum``).
"""
import contextlib
import difflib
import gc
import math
import os
import os.path as osp
import pickle
import random
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from dassl.data.datasets import Datum, DatasetBase
from dassl.utils import listdir_nohidden, mkdir_if_missing, read_json, write_json

DOC_FILE = "DATASETS.md"
FEWSHOT_SAMPLERS = ("per_class", "stratified_proportional")
SUBSAMPLE_CHOICES = ("all", "base", "new")
N_EXAMPLES = 5  # how many missing files an error / report lists


# ---------------------------------------------------------------------------------------------
# Errors that say what was expected and where to read about it
# ---------------------------------------------------------------------------------------------
class DatasetError(Exception):
    """Base class of the dataset errors below."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset folder, image folder, split file or annotation file is missing."""


class MissingImagesError(DatasetError, FileNotFoundError):
    """A split (JSON, annotation list or cache) lists images that are not on disk."""


class SplitFileError(DatasetError, ValueError):
    """A split / annotation / cache file exists but cannot be parsed."""


def doc_hint(section, root=None, name=None):
    """The 'what to do' sentence appended to every dataset error."""
    name = name or section
    root_arg = root if root else "$DATA"
    return (f'See {DOC_FILE}, section "{section}", for where to get it and the exact folder layout. '
            f"Check a data root with: python -m datasets.check --root {root_arg} {name}")


def _similar_entries(folder, wanted, n=3):
    """Names in ``folder`` that look like ``wanted`` (for 'did you mean' hints)."""
    try:
        entries = listdir_nohidden(folder)
    except OSError:
        return []
    return difflib.get_close_matches(osp.basename(wanted), entries, n=n, cutoff=0.5)


def require_dir(path, what, section, root=None, name=None, extra=""):
    """Return ``path`` if it is a directory, else raise :class:`DatasetNotFoundError`."""
    if osp.isdir(path):
        return path
    parent = osp.dirname(path.rstrip(os.sep))
    msg = f'{name or section}: the {what} "{path}" does not exist.'
    if not osp.isdir(parent):
        msg += f' Its parent folder "{parent}" does not exist either.'
    else:
        similar = _similar_entries(parent, path)
        if similar:
            msg += f' Found in "{parent}": {", ".join(similar)} (rename or symlink it).'
    if extra:
        msg += " " + extra
    raise DatasetNotFoundError(f"{msg} {doc_hint(section, root, name)}")


def require_file(path, what, section, root=None, name=None, extra=""):
    """Return ``path`` if it is a file, else raise :class:`DatasetNotFoundError`."""
    if osp.isfile(path):
        return path
    msg = f'{name or section}: the {what} "{path}" does not exist.'
    parent = osp.dirname(path)
    if osp.isdir(parent):
        similar = _similar_entries(parent, path)
        if similar:
            msg += f' Found in "{parent}": {", ".join(similar)}.'
    if extra:
        msg += " " + extra
    raise DatasetNotFoundError(f"{msg} {doc_hint(section, root, name)}")


# ---------------------------------------------------------------------------------------------
# Bulk existence checks
# ---------------------------------------------------------------------------------------------
def _list_files(folder):
    """Set of entry names in ``folder`` that are files (or links to files); None if unreadable."""
    try:
        with os.scandir(folder) as it:
            return {e.name for e in it if e.is_file()}
    except OSError:
        return None


class FileIndex:
    """Caches one directory listing per folder; answers 'does this path exist' without ``stat``."""

    def __init__(self):
        self._dirs = {}

    def listing(self, folder):
        try:
            return self._dirs[folder]
        except KeyError:
            names = self._dirs[folder] = _list_files(folder)
            return names

    def missing(self, paths):
        """The paths (order kept) whose file is not listed in its folder."""
        out = []
        dirs = self._dirs
        sep = os.sep
        for p in paths:
            folder, _, fname = p.rpartition(sep)
            try:
                names = dirs[folder]
            except KeyError:
                names = self.listing(folder)
            if names is None or fname not in names:
                out.append(p)
        return out


def find_missing(paths, index=None):
    """Paths in ``paths`` that do not exist as files (one directory listing per folder)."""
    return (index or FileIndex()).missing(paths)


@dataclass
class ImageGroup:
    """A list of items to verify, with where it came from (for the error message)."""

    split: str  # "train", "val", "test", ...
    items: list  # Datum objects or path strings
    source: str  # the file (or folder) the list was read from
    is_cache: bool = False  # a pickle with absolute paths (stale after a root move)


def _paths(items):
    return [it if isinstance(it, str) else it.impath for it in items]


def verify_files(groups, name, section, root=None, expected_dir=None):
    """Check every group's images exist, in bulk; raise one :class:`MissingImagesError` if not.

    The message gives, per group, how many of how many images are missing and from which file
    the list came, the first few missing paths, and what to do (re-download / delete a stale
    cache written under another ``DATASET.ROOT``).
    """
    index = FileIndex()
    rows, examples, stale_caches = [], [], []
    total_missing = total = 0
    for g in groups:
        paths = _paths(g.items)
        missing = index.missing(paths)
        total += len(paths)
        if not missing:
            continue
        total_missing += len(missing)
        rows.append(f"  {g.split} (from {g.source}): {len(missing):,} of {len(paths):,} missing")
        examples.extend(missing[: N_EXAMPLES - len(examples)] if len(examples) < N_EXAMPLES else [])
        if g.is_cache and expected_dir and paths and not paths[0].startswith(expected_dir + os.sep):
            stale_caches.append((g.source, paths[0]))
    if not total_missing:
        return
    lines = [f"{name}: {total_missing:,} of {total:,} images listed for this run are missing on disk:"]
    lines += rows
    lines.append("First missing files:")
    lines += [f"  {p}" for p in examples]
    advice = []
    for source, first in dict(stale_caches).items():
        advice.append(f'The cache "{source}" stores absolute paths and was written for another '
                      f'data root (its first image is "{first}", but this run reads images under '
                      f'"{expected_dir}"). Delete it and rerun: it is regenerated from the split '
                      "(same seed + same split -> same images).")
    advice.append("If files are really missing, re-download / re-extract the dataset, or set "
                  "DATASET.CHECK_FILES False to skip this check (the loader then fails on the "
                  "first missing image).")
    lines.append("What to do: " + " ".join(advice))
    lines.append(doc_hint(section, root, name))
    raise MissingImagesError("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Split files (split_zhou_<Name>.json)
# ---------------------------------------------------------------------------------------------
SPLIT_KEYS = ("train", "val", "test")


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while millions of objects are created.

    Building a 1.28 M-entry split allocates millions of lists / Datum objects; each allocation
    burst triggers generational collections that re-scan the whole (growing) heap, which costs
    more than the parsing itself. Nothing created here forms reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_json(filepath):
    try:
        with gc_paused():
            return read_json(filepath)
    except ValueError as e:  # json.JSONDecodeError
        raise SplitFileError(f'Cannot parse the split file "{filepath}": {e}. Re-download it or '
                             "delete it (the dataset then creates a new split if it can).") from e


def read_split(filepath, path_prefix):
    """``(train, val, test)`` lists of ``Datum`` from a CoOp split JSON (paths joined to the prefix).

    Prints ``Reading split from <filepath>``. Does not ``stat`` images (see :func:`verify_files`).
    """
    print(f"Reading split from {filepath}")
    split = _load_json(filepath)
    if not isinstance(split, dict) or any(k not in split for k in SPLIT_KEYS):
        keys = list(split) if isinstance(split, dict) else type(split).__name__
        raise SplitFileError(f'The split file "{filepath}" must be a JSON object with keys '
                             f'"train", "val", "test"; found {keys}.')
    out = []
    with gc_paused():
        for key in SPLIT_KEYS:
            try:
                out.append(_to_datums(split[key], path_prefix))
            except (TypeError, ValueError, AttributeError) as e:
                raise SplitFileError(f'The "{key}" list of the split file "{filepath}" must hold '
                                     f"[relative_path, label, classname] entries: {e}") from e
    return tuple(out)


def _to_datums(entries, path_prefix):
    """``Datum(join(path_prefix, rel), int(label), classname)`` per entry (fast ``join``)."""
    head = path_prefix if path_prefix.endswith(os.sep) or not path_prefix else path_prefix + os.sep
    # os.path.join(prefix, rel) is prefix + sep + rel unless rel is absolute
    return [Datum(impath=rel if rel.startswith(os.sep) else head + rel, label=int(label),
                  classname=classname) for rel, label, classname in entries]


def _relative(impath, path_prefix):
    if path_prefix and impath.startswith(path_prefix):
        impath = impath[len(path_prefix):]
    if impath.startswith("/"):
        impath = impath[1:]
    return impath


def save_split(train, val, test, filepath, path_prefix):
    """Write a CoOp split JSON (paths relative to ``path_prefix``); atomic. Prints ``Saved split to``."""
    def _extract(items):
        return [(_relative(item.impath, path_prefix), item.label, item.classname) for item in items]

    split = {"train": _extract(train), "val": _extract(val), "test": _extract(test)}
    write_json(split, filepath)
    print(f"Saved split to {filepath}")


def split_trainval(trainval, p_val=0.2):
    """Per label (first-appearance order): shuffle with ``random``, first ``round(n*p_val)`` -> val."""
    p_trn = 1 - p_val
    print(f"Splitting trainval into {p_trn:.0%} train and {p_val:.0%} val")
    tracker = defaultdict(list)
    for idx, item in enumerate(trainval):
        tracker[item.label].append(idx)
    train, val = [], []
    for label, idxs in tracker.items():
        n_val = round(len(idxs) * p_val)
        if n_val <= 0:
            raise ValueError(f"Cannot split trainval: label {label} has only {len(idxs)} image(s), "
                             f"so {p_val:.0%} of it rounds to 0 validation images.")
        random.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val


def split_groups(groups, p_trn=0.5, p_val=0.2):
    """Split each ``(label, classname, impaths)`` group: ``random.shuffle``, then train/val/test.

    ``n_train = round(n*p_trn)``, ``n_val = round(n*p_val)``, the rest test; all must be > 0.
    Groups are processed in the given order (the ``random`` stream depends on it).
    """
    train, val, test = [], [], []
    for label, classname, impaths in groups:
        random.shuffle(impaths)
        n_total = len(impaths)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        n_test = n_total - n_train - n_val
        if not (n_train > 0 and n_val > 0 and n_test > 0):
            raise ValueError(f'Cannot split class "{classname}" (label {label}): {n_total} image(s) '
                             f"give {n_train} train / {n_val} val / {n_test} test; each must be > 0.")
        for dst, part in ((train, impaths[:n_train]), (val, impaths[n_train:n_train + n_val]),
                          (test, impaths[n_train + n_val:])):
            dst.extend(Datum(impath=p, label=label, classname=classname) for p in part)
    return train, val, test


def read_and_split_data(image_dir, p_trn=0.5, p_val=0.2, ignored=(), new_cnames=None):
    """Split a ``<image_dir>/<class>/<image>`` tree (CoOp's ``DescribableTextures`` helper).

    Classes = sorted folder names minus ``ignored`` (label = index); images in ``listdir`` order
    (unsorted, as upstream), shuffled per class; class name = folder name, mapped by ``new_cnames``.
    """
    categories = sorted(c for c in listdir_nohidden(image_dir) if c not in ignored)
    p_tst = 1 - p_trn - p_val
    print(f"Splitting into {p_trn:.0%} train, {p_val:.0%} val, and {p_tst:.0%} test")
    groups = []
    for label, category in enumerate(categories):
        category_dir = osp.join(image_dir, category)
        images = [osp.join(category_dir, im) for im in listdir_nohidden(category_dir)]
        classname = new_cnames.get(category, category) if new_cnames else category
        groups.append((label, classname, images))
    return split_groups(groups, p_trn, p_val)


# ---------------------------------------------------------------------------------------------
# Base / new subsampling
# ---------------------------------------------------------------------------------------------
def subsample_classes(*args, subsample="all"):
    """Keep the base (first ``ceil(n/2)``) or new (remaining) labels of ``args[0]``, relabelled 0..k-1.

    ``"all"`` returns ``args`` unchanged. Otherwise prints ``SUBSAMPLE BASE CLASSES!`` /
    ``SUBSAMPLE NEW CLASSES!`` and rebuilds every kept item as ``Datum(impath, new_label,
    classname)`` (domain reset to 0) in every list of ``args``.
    """
    if subsample not in SUBSAMPLE_CHOICES:
        raise ValueError(f"DATASET.SUBSAMPLE_CLASSES must be one of {list(SUBSAMPLE_CHOICES)}, "
                         f'got "{subsample}"')
    if subsample == "all":
        return args
    labels = sorted({item.label for item in args[0]})
    m = math.ceil(len(labels) / 2)
    print(f"SUBSAMPLE {subsample.upper()} CLASSES!")
    selected = labels[:m] if subsample == "base" else labels[m:]
    relabeler = {y: y_new for y_new, y in enumerate(selected)}
    output = []
    for dataset in args:
        output.append([Datum(impath=item.impath, label=relabeler[item.label], classname=item.classname)
                       for item in dataset if item.label in relabeler])
    return output


# ---------------------------------------------------------------------------------------------
# Few-shot sampling and caches
# ---------------------------------------------------------------------------------------------
def _approximate_mode(class_counts, n_draws, rng):
    """scikit-learn's ``_approximate_mode`` (same arithmetic and the same RNG calls)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        values = np.sort(np.unique(remainder))[::-1]
        for value in values:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def stratified_train_indices(labels, train_size, seed):
    """Train indices of ``StratifiedShuffleSplit(n_splits=1, train_size, random_state=seed)``.

    A NumPy re-implementation of scikit-learn's ``StratifiedShuffleSplit._iter_indices`` (first
    split, test size = the complement), making the same ``RandomState`` calls in the same order, so
    the indices equal sklearn's (verified in the tests when scikit-learn is installed). ``seed``
    < 0 or None uses NumPy's global RNG (sklearn's ``random_state=None``). Per-class counts are
    proportional to the class frequencies in ``labels``.
    """
    y = np.asarray(labels)
    n_samples = y.shape[0]
    n_train = int(train_size)
    if not 0 < n_train < n_samples:
        raise ValueError(f"train_size={n_train} should be positive and smaller than the number of "
                         f"samples {n_samples}")
    n_test = n_samples - n_train
    classes, y_indices = np.unique(y, return_inverse=True)
    n_classes = classes.shape[0]
    class_counts = np.bincount(y_indices)
    if np.min(class_counts) < 2:
        raise ValueError("The least populated class in y has only 1 member, which is too few for "
                         "a stratified split (each class needs at least 2).")
    if n_train < n_classes:
        raise ValueError(f"The train_size = {n_train} should be greater or equal to the number of "
                         f"classes = {n_classes}")
    if n_test < n_classes:
        raise ValueError(f"The test_size = {n_test} should be greater or equal to the number of "
                         f"classes = {n_classes}")
    class_indices = np.split(np.argsort(y_indices, kind="mergesort"), np.cumsum(class_counts)[:-1])
    if seed is None or seed < 0:
        rng = np.random.mtrand._rand
    else:
        rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    class_counts_remaining = class_counts - n_i
    _approximate_mode(class_counts_remaining, n_test, rng)  # consumes the RNG as sklearn does
    train = []
    for i in range(n_classes):
        permutation = rng.permutation(class_counts[i])
        perm_indices_class_i = class_indices[i].take(permutation, mode="clip")
        train.extend(perm_indices_class_i[: n_i[i]])
    return [int(i) for i in rng.permutation(train)]


def first_appearance_ids(items):
    """Class ids by first appearance in ``items`` (how GalLoP numbers a CoOp split's classes)."""
    ids = {}
    return [ids.setdefault(item.label, len(ids)) for item in items]


def fewshot_cache_name(num_shots, seed, sampler="per_class", suffix=""):
    """``shot_{K}-seed_{S}.pkl``; ``-stratified`` for the proportional sampler, then ``suffix``."""
    tag = "-stratified" if sampler == "stratified_proportional" else ""
    return f"shot_{num_shots}-seed_{seed}{tag}{suffix}.pkl"


def load_pickle(path, keys):
    """Load a cache pickle and check it is a dict with ``keys`` (errors name the file)."""
    try:
        with open(path, "rb") as f, gc_paused():
            data = pickle.load(f)
    except Exception as e:  # truncated file, foreign class path, ...
        raise SplitFileError(f'Cannot read the cache "{path}": {e}. Delete it and rerun to '
                             "regenerate it.") from e
    if not isinstance(data, dict) or any(k not in data for k in keys):
        found = list(data) if isinstance(data, dict) else type(data).__name__
        raise SplitFileError(f'The cache "{path}" should be a dict with keys {list(keys)}, found '
                             f"{found}. Delete it and rerun to regenerate it.")
    return data


def warn_if_foreign(path, items, dataset_dir):
    """Warn when a cache's (absolute) image paths lie outside ``dataset_dir`` (root moved)."""
    if items and not items[0].impath.startswith(dataset_dir + os.sep):
        warnings.warn(f'The cache "{path}" was written for another data root: its images are read '
                      f'from "{osp.dirname(items[0].impath)}", not from under "{dataset_dir}". '
                      "Delete it to regenerate it for this root.")


def save_pickle(data, path):
    """Pickle ``data`` atomically (temp file + rename). Returns False (with a warning) on OSError."""
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            pickle.dump(data, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
        return True
    except OSError as e:
        warnings.warn(f'Could not write the cache "{path}" ({e}); continuing without it '
                      "(is the data root read-only?).")
        try:
            os.remove(tmp)
        except OSError:
            pass
        return False


def cfg_get(cfg, key, default):
    """``cfg.DATASET.<key>`` or ``default`` when the key is absent (plain Dassl configs)."""
    try:
        return cfg.DATASET.get(key, default)
    except AttributeError:
        return default


# ---------------------------------------------------------------------------------------------
# Checker report
# ---------------------------------------------------------------------------------------------
@dataclass
class DatasetReport:
    """What ``datasets.check`` found for one dataset."""

    name: str
    path: str
    status: str = "ok"  # ok | warning | incomplete | missing | error
    lines: list = field(default_factory=list)  # facts, one per line
    missing_files: list = field(default_factory=list)  # the first few missing files
    n_missing: int = 0
    advice: list = field(default_factory=list)  # what to do

    SEVERITY = {"ok": 0, "warning": 1, "incomplete": 2, "error": 3, "missing": 4}

    def escalate(self, status):
        if self.SEVERITY[status] > self.SEVERITY[self.status]:
            self.status = status

    def add_missing(self, missing):
        self.n_missing += len(missing)
        room = N_EXAMPLES - len(self.missing_files)
        if room > 0:
            self.missing_files.extend(missing[:room])


def count_line(split, listed, found, expected=None, source=""):
    """One checker line: ``train  4,128 listed  4,128 found  (CoOp: 4,128)``."""
    line = f"{split:<6} {listed:>9,} listed {found:>9,} found"
    if listed != found:
        line += f"  ({listed - found:,} missing)"
    if expected is not None:
        line += f"  (CoOp table: {expected:,}{'' if expected == listed else ' -- differs'})"
    if source:
        line += f"  [{source}]"
    return line


# ---------------------------------------------------------------------------------------------
# The base class of the 11 CoOp "train" datasets
# ---------------------------------------------------------------------------------------------
class CoOpDataset(DatasetBase):
    """A CoOp benchmark dataset: split JSON (or raw annotations) -> few-shot cache -> base/new.

    Subclasses set the class attributes below and, where CoOp creates the split from the raw
    annotations, implement :meth:`read_raw_splits`. Construction (DATASETS.md):

    1. ``dataset_dir = <ROOT>/<dataset_dir>``, ``image_dir``, ``split_path``; the folders must exist;
       ``split_fewshot/`` is created.
    2. Split JSON if present, else :meth:`read_raw_splits` + :func:`save_split`.
    3. ``NUM_SHOTS >= 1``: load or create ``split_fewshot/shot_{K}-seed_{S}.pkl`` (train K per
       class, then val min(K, 4) per class) -- before subsampling, so base/new/all share it.
    4. The images of everything read (split and cache) are checked in bulk
       (``DATASET.CHECK_FILES``); a new cache is written only after that check passed.
    5. ``subsample_classes(train, val, test)``.
    """

    dataset_dir = ""  # folder under DATASET.ROOT (upstream name)
    image_subdir = ""  # image folder inside dataset_dir
    split_file = None  # "split_zhou_<Name>.json", or None if the dataset has none
    split_relative_to_dataset_dir = False  # StanfordCars: JSON paths relative to dataset_dir
    raw_files = ()  # annotation files (relative to dataset_dir) used when the split JSON is absent
    image_dir_aliases = ()  # other names the image folder comes with (error hints)
    doc_section = None  # DATASETS.md section; defaults to the class name
    NUM_CLASSES = None
    EXPECTED_COUNTS = {}  # split sizes in the CoOp paper's dataset table (None: unknown)

    # Upstream static helpers, reachable as e.g. ``OxfordPets.read_split`` (CoOp API).
    read_split = staticmethod(read_split)
    save_split = staticmethod(save_split)
    split_trainval = staticmethod(split_trainval)
    subsample_classes = staticmethod(subsample_classes)

    # ---- paths -------------------------------------------------------------------------------
    @classmethod
    def section(cls):
        return cls.doc_section or cls.__name__

    @classmethod
    def paths(cls, root):
        """``(dataset_dir, image_dir, split_path)`` under an absolute root."""
        dataset_dir = osp.join(root, cls.dataset_dir)
        image_dir = osp.join(dataset_dir, cls.image_subdir) if cls.image_subdir else dataset_dir
        split_path = osp.join(dataset_dir, cls.split_file) if cls.split_file else None
        return dataset_dir, image_dir, split_path

    def _require_dir(self, path, what, extra=""):
        return require_dir(path, what, self.section(), self.root, type(self).__name__, extra)

    def _require_file(self, path, what, extra=""):
        return require_file(path, what, self.section(), self.root, type(self).__name__, extra)

    # ---- construction ------------------------------------------------------------------------
    def __init__(self, cfg):
        self.cfg = cfg
        self.root = osp.abspath(osp.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir, self.image_dir, self.split_path = self.paths(self.root)
        self.split_fewshot_dir = osp.join(self.dataset_dir, "split_fewshot")
        self._require_dir(self.dataset_dir, "dataset folder",
                          extra=f"(DATASET.ROOT is \"{self.root}\".)")
        self.check_layout()
        try:
            mkdir_if_missing(self.split_fewshot_dir)
        except OSError as e:
            warnings.warn(f'Cannot create "{self.split_fewshot_dir}" ({e}); few-shot caches will '
                          "not be written.")

        with gc_paused():  # millions of small acyclic objects for the largest splits
            train, val, test, sources = self.read_splits()
            groups = [ImageGroup(split, items, sources[split]) for split, items in
                      (("train", train), ("val", val), ("test", test))]

            train, val, cache_groups, save_cache = self.fewshot(train, val)
            groups += cache_groups
            if cfg_get(cfg, "CHECK_FILES", True):
                verify_files(groups, type(self).__name__, self.section(), self.root,
                             self.dataset_dir)
            save_cache()  # only once the images are known to exist

            subsample = cfg_get(cfg, "SUBSAMPLE_CLASSES", "all")
            train, val, test = subsample_classes(train, val, test, subsample=subsample)
        super().__init__(train_x=train, val=val, test=test)

    @classmethod
    def found_aliases(cls, dataset_dir):
        """Other names the image folder is known to have that exist in ``dataset_dir``."""
        return [a for a in cls.image_dir_aliases if osp.isdir(osp.join(dataset_dir, a))]

    def check_layout(self):
        """Raise a clear error if a folder the dataset needs is missing (default: the image folder)."""
        if self.image_subdir:
            aliases = self.found_aliases(self.dataset_dir)
            extra = (f'A folder "{osp.join(self.dataset_dir, aliases[0])}" exists: rename it (or '
                     f'symlink it) to "{self.image_dir}".' if aliases else "")
            self._require_dir(self.image_dir, "image folder", extra=extra)

    def read_splits(self):
        """``(train, val, test, sources)`` from the split JSON, else from the raw annotations."""
        if self.split_path and osp.exists(self.split_path):
            prefix = self.dataset_dir if self.split_relative_to_dataset_dir else self.image_dir
            train, val, test = read_split(self.split_path, prefix)
            src = self.split_path
        elif self.split_path:
            for rel in self.raw_files:
                self._require_file(
                    osp.join(self.dataset_dir, rel), "annotation file",
                    extra=(f'It is needed to create a split because the split file "{self.split_path}" '
                           f"is missing (CoOp provides {self.split_file}; download it to use the "
                           "standard split)."))
            train, val, test = self.read_raw_splits()
            prefix = self.dataset_dir if self.split_relative_to_dataset_dir else self.image_dir
            save_split(train, val, test, self.split_path, prefix)
            src = f"{self.dataset_dir} (new split)"
        else:
            train, val, test = self.read_raw_splits()
            src = self.dataset_dir
        return train, val, test, {"train": src, "val": src, "test": src}

    def read_raw_splits(self):
        """Create ``(train, val, test)`` from the raw annotations (dataset-specific)."""
        self._require_file(self.split_path, "split file")  # raises: no raw fallback
        raise AssertionError("unreachable")

    # ---- few-shot ----------------------------------------------------------------------------
    fewshot_with_val = True  # ImageNet caches only train
    fewshot_suffix = ""  # FGVCAircraft with FGVC_TRAIN_SPLIT=trainval: "-trainval"

    def fewshot_cache_path(self):
        cfg = self.cfg
        sampler = cfg_get(cfg, "FEWSHOT_SAMPLER", "per_class")
        name = fewshot_cache_name(cfg.DATASET.NUM_SHOTS, cfg.SEED, sampler, self.fewshot_suffix)
        return osp.join(self.split_fewshot_dir, name)

    def fewshot(self, train, val):
        """Load or create the few-shot split: ``(train, val, cache_groups, save)``.

        ``cache_groups`` are the lists read from an existing cache (to verify); ``save()`` writes a
        newly created cache (called after the images were verified; a no-op otherwise).
        """
        num_shots = self.cfg.DATASET.NUM_SHOTS
        if num_shots < 1:
            return train, val, [], lambda: None
        sampler = cfg_get(self.cfg, "FEWSHOT_SAMPLER", "per_class")
        if sampler not in FEWSHOT_SAMPLERS:
            raise ValueError(f"DATASET.FEWSHOT_SAMPLER must be one of {list(FEWSHOT_SAMPLERS)}, "
                             f'got "{sampler}"')
        path = self.fewshot_cache_path()
        keys = ("train", "val") if self.fewshot_with_val else ("train",)
        if osp.exists(path):
            print(f"Loading preprocessed few-shot data from {path}")
            data = load_pickle(path, keys)
            warn_if_foreign(path, data["train"], self.dataset_dir)
            groups = [ImageGroup(k, data[k], path, is_cache=True) for k in keys]
            if self.fewshot_with_val:
                val = data["val"]
            return data["train"], val, groups, lambda: None

        if sampler == "per_class":
            train = self.generate_fewshot_dataset(train, num_shots=num_shots)
        else:
            train = self.stratified_fewshot(train, num_shots)
        data = {"train": train}
        if self.fewshot_with_val:
            val = self.generate_fewshot_dataset(val, num_shots=min(num_shots, 4))
            data["val"] = val

        def save():
            print(f"Saving preprocessed few-shot data to {path}")
            save_pickle(data, path)

        return train, val, [], save

    def stratified_order(self, train):
        """``(items, class_ids)`` the stratified sampler sees (GalLoP's order and class numbering).

        CoOp-split datasets: the split-file order, classes numbered by first appearance.
        """
        return train, first_appearance_ids(train)

    def stratified_fewshot(self, train, num_shots):
        """SOT-GLP / GalLoP sampler: ``StratifiedShuffleSplit(train_size=K*C, random_state=SEED)``."""
        items, ids = self.stratified_order(train)
        n_classes = len(set(ids))
        n_train = num_shots * n_classes
        print(f"Creating a {num_shots}-shot dataset (stratified_proportional: {n_train:,} of "
              f"{len(items):,} images, per-class counts proportional to class frequency)")
        if n_train >= len(items):
            warnings.warn(f"{num_shots} shots x {n_classes} classes >= {len(items)} training "
                          "images: using the whole training split (as GalLoP does).")
            return list(items)
        idx = stratified_train_indices(ids, n_train, self.cfg.SEED)
        return [items[i] for i in idx]

    # ---- checker -----------------------------------------------------------------------------
    @classmethod
    def inspect(cls, root):
        """Checker report for this dataset under ``root`` (no image is opened)."""
        dataset_dir, image_dir, split_path = cls.paths(root)
        report = DatasetReport(cls.__name__, dataset_dir)
        if not osp.isdir(dataset_dir):
            return missing_report(report, cls.section(), root, dataset_dir)
        if cls.image_subdir and not osp.isdir(image_dir):
            report.escalate("error")
            similar = cls.found_aliases(dataset_dir) or _similar_entries(dataset_dir, image_dir)
            report.lines.append(f"image folder missing: {image_dir}"
                                + (f" (found: {', '.join(similar)}; rename it)" if similar else ""))
        if split_path and osp.isfile(split_path):
            try:
                split = _load_json(split_path)
                parts = {k: split[k] for k in SPLIT_KEYS}
            except (SplitFileError, KeyError, TypeError) as e:
                report.escalate("error")
                report.lines.append(f"split file unreadable: {e}")
                report.advice.append(f"Re-download {cls.split_file}.")
                return report
            prefix = dataset_dir if cls.split_relative_to_dataset_dir else image_dir
            lists = {k: [osp.join(prefix, e[0]) for e in v] for k, v in parts.items()}
            labels = {e[1] for e in parts["train"]}
            report.lines.append(f"split file {split_path}")
            add_split_counts(report, lists, cls.EXPECTED_COUNTS)
            add_class_count(report, len(labels), cls.NUM_CLASSES)
        elif split_path:
            report.escalate("error")
            report.lines.append(f"split file {split_path} is missing")
            missing_raw = [r for r in cls.raw_files if not osp.exists(osp.join(dataset_dir, r))]
            if not cls.creates_split():  # the loader stops without it: an error, as for train.py
                report.advice.append(cls.missing_split_advice(root))
            elif not missing_raw and osp.isdir(image_dir):
                report.status = "warning"
                report.advice.append(
                    f"Download {cls.split_file} (CoOp's fixed split) into {dataset_dir}. Without it "
                    "the loader creates a new random split from the raw annotations, so results "
                    "are not comparable with published numbers.")
            else:
                what = ", ".join(missing_raw) if missing_raw else "the raw annotations"
                report.advice.append(f"Download {cls.split_file} into {dataset_dir} (missing too: "
                                     f"{what}).")
        else:
            cls.inspect_raw(report, root)
        inspect_caches(report, dataset_dir, image_dir if not cls.split_relative_to_dataset_dir
                       else dataset_dir)
        finish_report(report, cls.section(), root)
        return report

    @classmethod
    def creates_split(cls):
        """Whether the loader builds a split from raw annotations when the split JSON is missing."""
        return cls.read_raw_splits is not CoOpDataset.read_raw_splits

    @classmethod
    def missing_split_advice(cls, root):
        return (f"Download {cls.split_file} into {cls.paths(root)[0]}: the loader needs it ({cls.__name__} "
                "has no raw annotations to build a split from).")

    @classmethod
    def inspect_raw(cls, report, root):
        """Checker for datasets without a split JSON (FGVCAircraft overrides it)."""


# ---------------------------------------------------------------------------------------------
# Checker helpers shared by the dataset files
# ---------------------------------------------------------------------------------------------
def missing_report(report, section, root, dataset_dir):
    report.status = "missing"
    report.lines.append(f"not found: {dataset_dir}")
    similar = _similar_entries(root, dataset_dir)
    if similar:
        report.lines.append(f"similar names in {root}: {', '.join(similar)} (rename or symlink)")
    report.advice.append(f'Prepare it as described in {DOC_FILE}, section "{section}".')
    return report


def add_split_counts(report, lists, expected=None, index=None, source=""):
    """Count listed vs present images per split (bulk) and add lines / missing examples."""
    index = index or FileIndex()
    expected = expected or {}
    for split, paths in lists.items():
        missing = index.missing(paths)
        report.lines.append(count_line(split, len(paths), len(paths) - len(missing),
                                       expected.get(split), source))
        if missing:
            report.add_missing(missing)
            report.escalate("incomplete")
        exp = expected.get(split)
        if exp is not None and exp != len(paths):
            report.escalate("warning")
    return index


def add_class_count(report, n, expected):
    line = f"classes {n}"
    if expected is not None and n != expected:
        line += f" (expected {expected})"
        report.escalate("warning")
    report.lines.append(line)


def inspect_caches(report, dataset_dir, image_dir):
    """Flag few-shot caches (and ``preprocessed.pkl``) written for another data root."""
    caches = []
    fs_dir = osp.join(dataset_dir, "split_fewshot")
    if osp.isdir(fs_dir):
        caches += [osp.join(fs_dir, f) for f in sorted(listdir_nohidden(fs_dir)) if f.endswith(".pkl")]
    pre = osp.join(dataset_dir, "preprocessed.pkl")
    if osp.isfile(pre):
        caches.append(pre)
    stale = []
    for path in caches:
        try:
            with open(path, "rb") as f, gc_paused():
                data = pickle.load(f)
            first = next(iter(data["train"])).impath
        except Exception as e:
            stale.append(f"{path} (unreadable: {e})")
            continue
        if not first.startswith(image_dir + os.sep):
            stale.append(f"{path} (paths start {osp.dirname(first)})")
    if caches:
        report.lines.append(f"caches  {len(caches)} file(s) in split_fewshot/"
                            + (" + preprocessed.pkl" if osp.isfile(pre) else ""))
    if stale:
        report.escalate("warning")
        report.lines += [f"stale cache: {s}" for s in stale]
        report.advice.append("Delete the stale cache file(s) listed: they hold absolute paths of "
                             "another data root (or are unreadable) and are regenerated on the "
                             "next run.")


def finish_report(report, section, root):
    if report.n_missing:
        report.advice.append(f"{report.n_missing:,} listed image(s) are missing: re-download / "
                             f're-extract the dataset as in {DOC_FILE}, section "{section}".')


def read_lines(path):
    """Non-empty stripped lines of a text file."""
    with open(path, "r") as f:
        return [line.strip() for line in f if line.strip()]
