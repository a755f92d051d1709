"""``python -m datasets.check``: a root with one dataset complete, one missing, one with missing images."""
import os
import os.path as osp
import subprocess
import sys
import time

import pytest

from dataset_fixtures import (
    REPO, TRAIN_DATASETS, VARIANTS, build, make_ood, make_tree,
)


def _split_counts(t):
    return {k: sum(v.values()) for k, v in t.counts.items()}


@pytest.fixture()
def mixed_root(tmp_path, monkeypatch):
    from datasets.caltech101 import Caltech101
    from datasets.dtd import DescribableTextures

    cal = make_tree("Caltech101", tmp_path)
    dtd = make_tree("DescribableTextures", tmp_path)
    # compare with the counts of this tiny tree instead of the CoOp paper's
    monkeypatch.setattr(Caltech101, "EXPECTED_COUNTS", _split_counts(cal))
    monkeypatch.setattr(Caltech101, "NUM_CLASSES", len(cal.classnames))
    monkeypatch.setattr(DescribableTextures, "EXPECTED_COUNTS", _split_counts(dtd))
    monkeypatch.setattr(DescribableTextures, "NUM_CLASSES", len(dtd.classnames))
    image_dir = osp.join(dtd.dataset_dir, "images")
    gone = []
    for cname in dtd.classnames[:3]:  # one image of three classes
        rel = f"{cname}/{cname}_0002.jpg"
        os.remove(osp.join(image_dir, rel))
        gone.append(osp.join(image_dir, rel))
    return tmp_path, cal, dtd, gone


def test_checker_reports(mixed_root, capsys):
    from datasets.check import check_root, main

    root, cal, dtd, gone = mixed_root
    names = ["Caltech101", "OxfordPets", "DescribableTextures"]
    reports = {r.name: r for r in check_root(str(root), names)}
    assert reports["Caltech101"].status == "ok"
    assert reports["Caltech101"].n_missing == 0
    assert reports["OxfordPets"].status == "missing"
    assert reports["DescribableTextures"].status == "incomplete"
    assert reports["DescribableTextures"].n_missing == 3
    assert sorted(reports["DescribableTextures"].missing_files) == sorted(gone)

    assert main(["--root", str(root)] + names) == 1
    out = capsys.readouterr().out
    assert "[OK] Caltech101" in out
    assert "[MISSING] OxfordPets" in out and osp.join(str(root), "oxford_pets") in out
    assert 'DATASETS.md, section "OxfordPets"' in out
    assert "[INCOMPLETE] DescribableTextures" in out
    n_train = sum(dtd.counts["train"].values())
    assert f"{n_train:>9,} listed {n_train - 3:>9,} found  (3 missing)" in out
    for p in gone:
        assert p in out
    assert "re-download" in out
    assert "Summary: 1 ok, 1 incomplete, 1 missing" in out

    assert main(["--root", str(root), "Caltech101"]) == 0
    # without names, absent datasets are listed but only present ones decide the exit status
    assert main(["--root", str(root)]) == 1
    os.remove(osp.join(dtd.dataset_dir, "split_zhou_DescribableTextures.json"))
    capsys.readouterr()
    assert main(["--root", str(root)]) == 0  # DTD now only warns (split would be created)
    assert "[WARNING] DescribableTextures" in capsys.readouterr().out


def test_checker_flags_counts_that_differ_from_coop_table(tmp_path, capsys):
    from datasets.check import check_root

    make_tree("Caltech101", tmp_path)
    (report,) = check_root(str(tmp_path), ["Caltech101"])
    assert report.status == "warning"
    assert "(CoOp table: 4,128 -- differs)" in "\n".join(report.lines)


def test_checker_flags_stale_caches(tmp_path):
    from datasets.check import check_root

    old = tmp_path / "old"
    make_tree("DescribableTextures", old)
    build(old, "DescribableTextures", num_shots=1, seed=1)
    new = tmp_path / "new"
    os.rename(old, new)
    (report,) = check_root(str(new), ["DescribableTextures"])
    text = "\n".join(report.lines + report.advice)
    assert "stale cache" in text and "shot_1-seed_1.pkl" in text and "Delete" in text


def test_checker_on_every_dataset_layout(tmp_path):
    from datasets.check import check_root, format_report

    for name in TRAIN_DATASETS + VARIANTS:
        make_tree(name, tmp_path)
    for name in ("OODiNaturalist", "OODSUN", "OODPlaces", "OODTextures"):
        make_ood(tmp_path, name)
    t0 = time.time()
    reports = check_root(str(tmp_path))
    elapsed = time.time() - t0
    from datasets import SYNTHETIC_DATASETS

    reports = [r for r in reports if r.name not in SYNTHETIC_DATASETS]  # rendered, not laid out here
    for r in reports:
        text = format_report(r)
        # tiny trees: sizes differ from the published ones (warning), nothing is missing;
        # the variants lack most class folders (incomplete)
        assert r.n_missing == 0, text
        if r.name in VARIANTS and r.name != "ImageNetV2":
            assert r.status == "incomplete" and "class folder(s) missing" in text, text
        else:
            assert r.status in ("ok", "warning"), text
    assert len(reports) == 19
    assert elapsed < 10


def test_checker_open_images_finds_unreadable(tmp_path, capsys):
    from datasets.check import main

    t = make_tree("EuroSAT", tmp_path)
    bad = osp.join(t.dataset_dir, "2750", "Forest", "Forest_3.jpg")
    with open(bad, "wb") as f:
        f.write(b"garbage")
    assert main(["--root", str(tmp_path), "--open", "EuroSAT"]) == 1
    out = capsys.readouterr().out
    assert "1 unreadable" in out and bad in out


def test_checker_command_line(tmp_path):
    make_tree("EuroSAT", tmp_path)
    proc = subprocess.run([sys.executable, "-m", "datasets.check", "--root", str(tmp_path), "EuroSAT",
                           "OxfordPets"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "[WARNING] EuroSAT" in proc.stdout and "[MISSING] OxfordPets" in proc.stdout


def test_checker_unknown_name(tmp_path, capsys):
    from datasets.check import main

    assert main(["--root", str(tmp_path), "Eurosat"]) == 2
    assert 'did you mean "EuroSAT"' in capsys.readouterr().err


def test_checker_names_a_misnamed_image_folder(tmp_path):
    from datasets.check import check_root

    t = make_tree("EuroSAT", tmp_path)
    os.rename(osp.join(t.dataset_dir, "2750"), osp.join(t.dataset_dir, "EuroSAT_RGB"))
    (report,) = check_root(str(tmp_path), ["EuroSAT"])
    assert report.status == "error" and report.n_missing > 0  # and every listed image is missing
    assert any("image folder missing" in line and "EuroSAT_RGB" in line for line in report.lines)


def test_checker_exit_status_agrees_with_train_py_when_a_split_cannot_be_built(tmp_path, capsys):
    """A mini-world without its split file: train.py stops, so the checker must not say 0 (and must not
    promise a split the loader never creates)."""
    from datasets.check import main
    from miniworld.write import split_file, write_miniworld

    d = write_miniworld(str(tmp_path), counts={"train": 1, "val": 1, "test": 1}, log=lambda s: None)
    assert main(["--root", str(tmp_path), "MiniWorld"]) == 0
    capsys.readouterr()
    os.remove(osp.join(d, split_file("miniworld")))
    assert main(["--root", str(tmp_path), "MiniWorld"]) == 1
    out = capsys.readouterr().out
    assert "[ERROR] MiniWorld" in out and "creates a new random split" not in out
    assert f"python -m miniworld.write --root {tmp_path} --variant miniworld --force" in out
    r = subprocess.run([sys.executable, "train.py", "--root", str(tmp_path), "--trainer", "ZeroshotCLIP",
                        "--dataset-config-file", "configs/datasets/miniworld.yaml", "--output-dir",
                        str(tmp_path / "o"), "--eval-only", "MODEL.BACKBONE.NAME", "tiny"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and split_file("miniworld") in r.stderr
