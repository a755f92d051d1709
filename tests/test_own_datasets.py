"""Your own data: ``ImageFolder`` and ``CSVDataset`` (split files, class names, bad input, the checker) and
zero-shot CLIP, CoOp and Prompt-OT base-to-new on them (``tiny`` backbone)."""
import contextlib
import io
import json
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

from conftest import COLORS, REPO, write_image
from dassl.data.datasets import DATASET_REGISTRY
from datasets.custom import InvalidDataError

CLASSES = ["red_ball", "green_leaf", "blue_sky", "yellow_sun"]  # folder names (sorted: blue, green, red, yellow)
PER_CLASS = 12


def write_folder_tree(root, classes=CLASSES, n=PER_CLASS, splits=None):
    """``root/<class>/<i>.jpg`` (or ``root/<split>/<class>/<i>.jpg`` for ``splits={split: n}``)."""
    colors = list(COLORS.values())
    for c, name in enumerate(classes):
        for split, count in (splits or {None: n}).items():
            for i in range(count):
                folder = osp.join(root, split, name) if split else osp.join(root, name)
                write_image(osp.join(folder, f"{i:02d}.jpg"), colors[c % len(colors)], seed=c * 100 + i)
    return root


def build(make_cfg, root, name="ImageFolder", shots=0, **keys):
    cfg = make_cfg()
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, cfg.SEED = str(root), name, shots, 1
    for k, v in keys.items():
        cfg.DATASET[k] = v
    with contextlib.redirect_stdout(io.StringIO()):
        return DATASET_REGISTRY.get(name)(cfg)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_split_file_is_seeded_complete_and_never_overwritten(make_cfg, tmp_path):
    trees = {k: write_folder_tree(str(tmp_path / k)) for k in ("a", "b", "c")}
    build(make_cfg, trees["a"], SPLIT_SEED=1)
    build(make_cfg, trees["b"], SPLIT_SEED=1)
    build(make_cfg, trees["c"], SPLIT_SEED=2)
    files = {k: osp.join(t, "split_zhou_ImageFolder.json") for k, t in trees.items()}
    assert read(files["a"]) == read(files["b"])  # same seed: byte-identical split files
    assert read(files["a"]) != read(files["c"])  # another seed: another split
    split = json.loads(read(files["a"]))
    # CoOp's format and counts: per class round(12 * 0.5) train, round(12 * 0.2) val, the rest test
    n_train, n_val = round(PER_CLASS * 0.5), round(PER_CLASS * 0.2)
    on_disk = {osp.join(c, f) for c in CLASSES for f in os.listdir(osp.join(trees["a"], c))}
    listed = [e[0] for k in ("train", "val", "test") for e in split[k]]
    assert sorted(listed) == sorted(on_disk)  # every image exactly once
    order = sorted(CLASSES)
    for key, n in (("train", n_train), ("val", n_val), ("test", PER_CLASS - n_train - n_val)):
        for label, folder in enumerate(order):
            entries = [e for e in split[key] if e[0].startswith(folder + "/")]
            assert len(entries) == n
            assert {(e[1], e[2]) for e in entries} == {(label, folder.replace("_", " "))}

    before, mtime = read(files["a"]), os.stat(files["a"]).st_mtime_ns
    ds = build(make_cfg, trees["a"], SPLIT_SEED=2, SPLIT_RATIOS=(0.6, 0.1))  # reused, not re-split
    assert read(files["a"]) == before and os.stat(files["a"]).st_mtime_ns == mtime
    assert len(ds.train_x) == n_train * len(CLASSES)
    below = build(make_cfg, tmp_path, FOLDER="a")  # DATASET.ROOT = the parent, DATASET.FOLDER = the data folder
    assert [d.impath for d in below.test] == [d.impath for d in ds.test]

    write_image(osp.join(trees["a"], "blue_sky", "new.jpg"), COLORS["blue"])
    with pytest.raises(InvalidDataError, match=r"split_zhou_ImageFolder.json\" was made from other data: 1 image"):
        build(make_cfg, trees["a"])
    assert read(files["a"]) == before


def test_given_split_and_class_name_file_order_labels(make_cfg, tmp_path):
    root = write_folder_tree(str(tmp_path / "d"), splits={"train": 10, "test": 3})
    with open(osp.join(root, "names.txt"), "w") as f:  # the file's order is the label order
        f.write("# folder  class name\nyellow_sun the sun\nred_ball a red ball\ngreen_leaf leaf\nblue_sky sky\n")
    ds = build(make_cfg, root, CLASSNAMES_FILE="names.txt")
    assert ds.classnames == ["the sun", "a red ball", "leaf", "sky"]
    n_val = round(10 * 0.2)  # val carved from train/ with the val fraction
    assert len(ds.train_x) == 4 * (10 - n_val) and len(ds.val) == 4 * n_val and len(ds.test) == 4 * 3
    assert {osp.basename(osp.dirname(osp.dirname(d.impath))) for d in ds.test} == {"test"}
    assert {d.label for d in ds.test if "/yellow_sun/" in d.impath} == {0}
    base = build(make_cfg, root, CLASSNAMES_FILE="names.txt", SUBSAMPLE_CLASSES="base")
    assert base.classnames == ["the sun", "a red ball"]  # base = first half of the file's classes


def write_csv(root, rows, header="path,label,split"):
    with open(osp.join(root, "data.csv"), "w") as f:
        f.write((header + "\n" if header else "") + "".join(",".join(r) + "\n" for r in rows))


def test_csv_dataset_given_split_is_kept(make_cfg, tmp_path):
    root = str(tmp_path / "csv")
    write_folder_tree(osp.join(root, "img"), n=6)
    rows = [(f"img/{c}/{i:02d}.jpg", c, "train" if i < 3 else ("val" if i == 3 else "test"))
            for c in CLASSES for i in range(6)]
    write_csv(root, rows)
    ds = build(make_cfg, root, name="CSVDataset", shots=2)
    got = {(osp.relpath(d.impath, root), d.classname) for d in ds.test}
    assert got == {(p, c.replace("_", " ")) for p, c, s in rows if s == "test"}
    assert len(ds.train_x) == 2 * len(CLASSES)  # 2 shots of the 3 train rows per class
    assert {osp.relpath(d.impath, root) for d in ds.train_x} <= {p for p, c, s in rows if s == "train"}

    # numeric labels with a class-name file (no split column: split with the ratios)
    numeric = str(tmp_path / "numeric")
    write_folder_tree(osp.join(numeric, "img"), n=6)
    write_csv(numeric, [(f"img/{c}/{i:02d}.jpg", str(10 - k)) for k, c in enumerate(CLASSES) for i in range(6)],
              header="")
    with open(osp.join(numeric, "names.txt"), "w") as f:
        f.write("".join(f"{10 - k} {c.split('_')[1]}\n" for k, c in enumerate(CLASSES)))
    ds = build(make_cfg, numeric, name="CSVDataset", CLASSNAMES_FILE="names.txt")
    assert ds.classnames == [c.split("_")[1] for c in CLASSES]  # the file's order
    assert len(ds.test) == len(CLASSES) * (6 - round(6 * 0.5) - round(6 * 0.2))
    assert all(osp.basename(osp.dirname(d.impath)).endswith("_" + d.classname) for d in ds.test)


def bad_input_cases(tmp_path):
    """``(dataset name, data folder, config keys, text the one-line error must contain)``."""
    cases = []
    r = write_folder_tree(str(tmp_path / "empty"))
    os.makedirs(osp.join(r, "purple_hat"))
    cases.append(("ImageFolder", r, {}, 'the class folder "' + osp.join(r, "purple_hat") + '" has no images'))
    r = write_folder_tree(str(tmp_path / "shots"))
    cases.append(("ImageFolder", r, {"NUM_SHOTS": 8}, 'has 6 training image(s), fewer than DATASET.NUM_SHOTS 8'))
    r = write_folder_tree(str(tmp_path / "unreadable"))
    with open(osp.join(r, "red_ball", "broken.jpg"), "wb") as f:
        f.write(b"not a jpeg")
    cases.append(("ImageFolder", r, {}, f'cannot be read as images, first "{osp.join(r, "red_ball", "broken.jpg")}"'))
    r = write_folder_tree(str(tmp_path / "dup"), n=3)
    write_csv(r, [("red_ball/00.jpg", "red_ball"), ("green_leaf/00.jpg", "green_leaf"),
                  ("red_ball/00.jpg", "red_ball")], header="path,label")
    cases.append(("CSVDataset", r, {},
                  '"red_ball/00.jpg" is listed twice in "' + osp.join(r, "data.csv") + '" (rows 2 and 4)'))
    r = write_folder_tree(str(tmp_path / "split_value"), n=3)
    write_csv(r, [("red_ball/00.jpg", "red_ball", "train"), ("red_ball/01.jpg", "red_ball", "training")])
    cases.append(("CSVDataset", r, {}, f'row 3 of "{osp.join(r, "data.csv")}": split "training" is not one of '
                                       "train, val, test"))
    r = write_folder_tree(str(tmp_path / "names"), n=3)
    with open(osp.join(r, "names.txt"), "w") as f:
        f.write("red_ball ball\ngreen_leaf leaf\nblue_sky sky\n")
    cases.append(("ImageFolder", r, {"CLASSNAMES_FILE": "names.txt"},
                  'missing from the class-name file "' + osp.join(r, "names.txt") + '", first "yellow_sun"'))
    r = write_folder_tree(str(tmp_path / "numbers"), classes=["0", "1"], n=3)
    cases.append(("ImageFolder", r, {}, "the labels are numbers (0, 1, ...)"))
    return cases


def test_bad_input_is_one_clear_line(make_cfg, tmp_path):
    for name, root, keys, text in bad_input_cases(tmp_path):
        shots = keys.pop("NUM_SHOTS", 0)
        with pytest.raises(InvalidDataError) as e:
            build(make_cfg, root, name=name, shots=shots, **keys)
        msg = str(e.value)
        assert text in msg and "\n" not in msg and msg.startswith(name + ": "), msg
    assert not osp.exists(osp.join(str(tmp_path / "unreadable"), "split_zhou_ImageFolder.json"))
    # through train.py: exit status 2 and the same line on stderr
    root = str(tmp_path / "empty")
    r = subprocess.run([sys.executable, "train.py", "--root", root, "--trainer", "ZeroshotCLIP", "--eval-only",
                        "--dataset-config-file", "configs/datasets/imagefolder.yaml", "--output-dir",
                        str(tmp_path / "out"), "MODEL.BACKBONE.NAME", "tiny"], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f'Error: ImageFolder: the class folder "{osp.join(root, "purple_hat")}" '
                                             "has no images (.jpg, .jpeg, .png, .bmp, .gif, .webp, .tif, .tiff, "
                                             ".ppm, .pgm): add images or remove the folder."]


def test_datasets_check_reports_own_data(make_cfg, tmp_path):
    from datasets import check

    root = write_folder_tree(str(tmp_path / "d"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert check.main(["--root", root, "imagefolder"]) == 0
    text = out.getvalue()
    assert "[OK] ImageFolder" in text and f"{len(CLASSES) * PER_CLASS} images, unsplit" in text
    assert "not written yet" in text and "classes 4" in text
    build(make_cfg, root)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert check.main(["--root", root, "ImageFolder"]) == 0
    n_train = round(PER_CLASS * 0.5) * len(CLASSES)
    assert f"train  {n_train:>9,} listed {n_train:>9,} found" in out.getvalue()
    assert "ImageFolder" not in check.default_names() and "OxfordPets" in check.default_names()
    os.remove(osp.join(root, "red_ball", "00.jpg"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert check.main(["--root", root, "ImageFolder"]) == 1
    assert "1 missing" in out.getvalue() and "no longer in" in out.getvalue()


# ---- every method on your own data ------------------------------------------------------------------------
def csv_tree(root):
    """The same images as the folder tree, listed in a CSV (no split column: split with the ratios)."""
    write_folder_tree(osp.join(root, "img"))
    write_csv(root, [(f"img/{c}/{i:02d}.jpg", c) for c in CLASSES for i in range(PER_CLASS)], header="path,label")
    return root


@pytest.mark.parametrize("name", ["ImageFolder", "CSVDataset"])
def test_zeroshot_coop_promptot_base_to_new(make_cfg, tmp_path, name):
    import trainers.coop  # noqa: F401
    import trainers.promptot  # noqa: F401
    import trainers.zsclip  # noqa: F401
    from dassl.engine import build_trainer
    from dassl.utils import set_random_seed

    root = str(tmp_path / "data")
    write_folder_tree(root) if name == "ImageFolder" else csv_tree(root)
    build(make_cfg, root, name=name)  # writes the split file
    split = json.load(open(osp.join(root, f"split_zhou_{name}.json")))
    n_base = math.ceil(len(CLASSES) / 2)
    test_count = {"base": sum(e[1] < n_base for e in split["test"]),
                  "new": sum(e[1] >= n_base for e in split["test"])}

    def run(trainer, sub, out, train=True, model_dir=None):
        cfg = make_cfg()
        cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.DATASET.NUM_SHOTS, cfg.SEED = root, name, 4, 1
        cfg.DATASET.SUBSAMPLE_CLASSES, cfg.TRAINER.NAME, cfg.OUTPUT_DIR = sub, trainer, str(tmp_path / out)
        cfg.MODEL.BACKBONE.NAME, cfg.OPTIM.MAX_EPOCH, cfg.DATALOADER.TRAIN_X.BATCH_SIZE = "tiny", 1, 4
        cfg.TRAINER.PROMPTOT.PREC = cfg.TRAINER.COOP.PREC = "fp32"
        set_random_seed(1)
        with contextlib.redirect_stdout(io.StringIO()):
            t = build_trainer(cfg)
            if model_dir:
                t.load_model(model_dir, epoch=1)
            t.train() if train else t.test()
        return t

    for trainer in ("ZeroshotCLIP", "CoOp", "PromptOT"):
        is_zs = trainer == "ZeroshotCLIP"
        t = run(trainer, "base", f"{trainer}_base", train=not is_zs)
        assert t.dm.num_classes == n_base and t.lab2cname[0] == sorted(CLASSES)[0].replace("_", " ")
        assert t.evaluator._total == test_count["base"]
        if not is_zs:
            assert len(t.dm.dataset.train_x) == 4 * n_base  # 4 shots of each base class
        model_dir = None if is_zs else str(tmp_path / f"{trainer}_base")
        new = run(trainer, "new", f"{trainer}_new", train=False, model_dir=model_dir)
        assert new.dm.num_classes == len(CLASSES) - n_base
        assert new.evaluator._total == test_count["new"]
        assert 0 <= new.last_test_result["accuracy"] <= 100


def test_readme_example_runs_on_a_generated_folder(tmp_path):
    """scripts/own/example.sh (the README's example) on an ImageFolder tree, tiny backbone, one seed."""
    import pandas as pd

    data, out = str(tmp_path / "my_images"), str(tmp_path / "own")
    write_folder_tree(data)
    env = dict(os.environ, DATA=data, OUT_OWN=out, SEEDS="1", LOADEP="1", PY=sys.executable, PYTHONUNBUFFERED="1")
    r = subprocess.run(["bash", "scripts/own/example.sh", "imagefolder", "MODEL.BACKBONE.NAME", "tiny",
                        "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "4", "DATALOADER.NUM_WORKERS", "0"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "[OK] ImageFolder" in r.stdout and "HM" in r.stdout  # the checker's report, then the table
    summary = pd.read_csv(osp.join(out, "tables", "results_summary.csv"))
    rows = summary[summary["dataset"] == "imagefolder"].set_index("trainer")
    assert set(rows.index) == {"ZeroshotCLIP", "PromptOT"}
    for trainer, exp in (("ZeroshotCLIP", "output"), ("PromptOT", "output10.0")):
        for sub in ("base", "new"):
            run_dir = osp.join(out, exp, "base2new", f"test_{sub}", "imagefolder", "shots_16", trainer)
            (cfg_dir,) = os.listdir(run_dir)
            record = json.load(open(osp.join(run_dir, cfg_dir, "seed1", "provenance.json")))
            (segment,) = record["segments"]
            assert segment["status"] == "finished" and segment["config"]["DATASET"]["NAME"] == "ImageFolder"
            assert rows.loc[trainer, sub] == pytest.approx(segment["metrics"]["accuracy"], abs=0.05)
        b, n = rows.loc[trainer, "base"], rows.loc[trainer, "new"]
        assert rows.loc[trainer, "hm"] == pytest.approx(2 * b * n / (b + n))
