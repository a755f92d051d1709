"""Check a data root: ``python -m datasets.check --root DATA [NAMES...]``.

For each dataset (default: all 19), says whether it is present, counts the images of every split
against the split file and against the sizes in the CoOp paper's dataset table, lists the first
few missing files, flags few-shot caches written for another data root, and says what to do.
Fast: images are never opened (``--open`` opens every present image to find unreadable files);
existence is checked with one directory listing per folder.

Exit status: 0 when every dataset named is complete (without names: every dataset present is
complete; absent ones are only listed), 1 otherwise, 2 for a bad argument.
"""
import argparse
import os.path as osp
import sys
import time

from dassl.data.datasets import DATASET_REGISTRY

STATUS_TAG = {
    "ok": "OK",
    "warning": "WARNING",
    "incomplete": "INCOMPLETE",
    "error": "ERROR",
    "missing": "MISSING",
}


def dataset_names():
    """The 19 datasets of this package, then any other registered dataset that can be inspected."""
    import datasets  # registers everything

    names = list(datasets.ALL_DATASETS)
    names += [n for n in DATASET_REGISTRY.registered_names()
              if n not in names and callable(getattr(DATASET_REGISTRY.get(n), "inspect", None))]
    return names


def default_names():
    """What a check without names covers: all but your own datasets (their root is one data folder)."""
    return [n for n in dataset_names() if getattr(DATASET_REGISTRY.get(n), "check_by_default", True)]


def check_root(root, names=None, open_images=False):
    """Reports (``datasets.common.DatasetReport``) for ``names`` (default: all) under ``root``."""
    root = osp.abspath(osp.expanduser(root))
    names = list(names) if names else default_names()
    reports = []
    for name in names:
        cls = DATASET_REGISTRY.get(name)
        try:
            report = cls.inspect(root)
        except Exception as e:  # an unexpected layout must not stop the other checks
            from .common import DatasetReport

            report = DatasetReport(name, root, status="error",
                                   lines=[f"could not be checked: {type(e).__name__}: {e}"],
                                   advice=[f'Compare with DATASETS.md, section "{name}".'])
        if open_images and report.status not in ("missing", "error"):
            _open_all(cls, root, report)
        reports.append(report)
    return reports


def _open_all(cls, root, report):
    """Open every present image of the dataset (slow; only with ``--open``)."""
    from dassl.utils import read_image

    from .common import FileIndex

    try:
        paths = _all_listed_images(cls, root)
    except Exception as e:  # the report already says why the listing failed
        report.lines.append(f"--open skipped: {e}")
        return
    index = FileIndex()
    present = set(paths) - set(index.missing(paths))
    bad = []
    for p in sorted(present):
        try:
            read_image(p)
        except IOError as e:
            bad.append(f"{p} ({e.__cause__ or e})")
    report.lines.append(f"opened {len(present):,} images, {len(bad):,} unreadable")
    if bad:
        report.escalate("incomplete")
        report.missing_files.extend(bad[:5])
        report.advice.append("Re-download the unreadable images listed (or remove them from the "
                             "split).")


def _all_listed_images(cls, root):
    """Every image path a dataset would load, built with a throw-away config."""
    from dassl.config import get_cfg_default

    from datasets.config import extend_dataset_cfg

    cfg = extend_dataset_cfg(get_cfg_default())
    cfg.DATASET.ROOT = root
    cfg.DATASET.NAME = cls.__name__
    cfg.DATASET.CHECK_FILES = False
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        ds = cls(cfg)
    paths = []
    for split in (ds.train_x, ds.val, ds.test):
        paths.extend(d.impath for d in split or [])
    return list(dict.fromkeys(paths))


def format_report(report):
    """The text block printed for one dataset."""
    tag = STATUS_TAG[report.status]
    out = [f"[{tag}] {report.name}  ({report.path})"]
    out += [f"    {line}" for line in report.lines]
    if report.missing_files:
        out.append(f"    first missing / unreadable files ({report.n_missing:,} missing in all):"
                   if report.n_missing else "    unreadable files:")
        out += [f"      {p}" for p in report.missing_files]
    out += [f"    -> {a}" for a in report.advice]
    return "\n".join(out)


def config_stem_to_name(name):
    """Accept the script identifiers too (``oxford_pets`` -> ``OxfordPets``, via configs/datasets/*.yaml)."""
    import yaml

    path = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), "configs", "datasets", f"{name}.yaml")
    if osp.isfile(path):
        with open(path) as f:
            return (yaml.safe_load(f) or {}).get("DATASET", {}).get("NAME", name)
    return name


def exit_status(reports, names_given):
    bad = []
    for r in reports:
        if r.status in ("ok", "warning"):
            continue
        if r.status == "missing" and not names_given:
            continue
        bad.append(r)
    return 1 if bad else 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m datasets.check",
        description="Check the CoOp benchmark datasets, ImageNet variants and OOD sets under a "
                    "data root (layout, split files, image counts, stale caches). Images are not "
                    "opened unless --open is given.")
    parser.add_argument("--root", required=True, help="the data root (DATASET.ROOT, $DATA)")
    parser.add_argument("names", nargs="*", help="dataset names (DATASET.NAME); default: all")
    parser.add_argument("--open", action="store_true",
                        help="also open every present image (slow) to find unreadable files; the "
                             "dataset is built as a run would build it (this may write the split "
                             "file or imagenet/preprocessed.pkl)")
    args = parser.parse_args(argv)

    known = dataset_names()
    args.names = [config_stem_to_name(n) for n in args.names]
    unknown = [n for n in args.names if n not in known]
    if unknown:
        from dassl.utils import get_most_similar_str_to_a_from_b

        for n in unknown:
            print(f'Unknown dataset "{n}" (did you mean "{get_most_similar_str_to_a_from_b(n, known)}"?). '
                  f"Known: {', '.join(known)}", file=sys.stderr)
        return 2
    root = osp.abspath(osp.expanduser(args.root))
    if not osp.isdir(root):
        print(f'The data root "{root}" does not exist.', file=sys.stderr)
        return 1

    t0 = time.time()
    reports = check_root(root, args.names or None, open_images=args.open)
    elapsed = time.time() - t0
    print(f"Data root: {root}\n")
    for r in reports:
        print(format_report(r))
        print()
    counts = {}
    for r in reports:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUS_TAG if s in counts)
    print(f"Summary: {summary} (checked in {elapsed:.2f} s)")
    return exit_status(reports, bool(args.names))


if __name__ == "__main__":
    sys.exit(main())
