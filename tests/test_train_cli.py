"""``train.py`` end to end in a subprocess, as a user runs it: ZeroshotCLIP eval-only and bad input."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest

from conftest import REPO
from datasets.toy import write_coop_tree


@pytest.fixture(scope="module")
def pets_root(tmp_path_factory):
    """A tiny tree in CoOp's OxfordPets layout: ``oxford_pets/images`` + ``split_zhou_OxfordPets.json``."""
    root = tmp_path_factory.mktemp("data")
    write_coop_tree(str(root))  # 4 classes x (4 train, 1 val, 3 test)
    return root


def run_train(args, cwd=REPO, env_extra=None):
    env = dict(os.environ, PYTHONUNBUFFERED="1", **(env_extra or {}))
    return subprocess.run([sys.executable, osp.join(REPO, "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def base_args(root, out, trainer="ZeroshotCLIP"):
    return ["--root", str(root), "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", osp.join(REPO, "configs/datasets/oxford_pets.yaml"),
            "--output-dir", str(out)]


def test_zeroshot_eval_only_prints_result_block(pets_root, tmp_path):
    out = tmp_path / "zs"
    r = run_train(base_args(pets_root, out) + ["--eval-only", "MODEL.BACKBONE.NAME", "tiny",
                                               "DATALOADER.NUM_WORKERS", "0", "USE_CUDA", "False"],
                  cwd=str(tmp_path))  # any working directory
    assert r.returncode == 0, r.stderr[-3000:]
    m = re.search(r"=> result\n\* total: 12\n\* correct: (\d+)\n\* accuracy: ([\d.]+)%\n\* error: ([\d.]+)%\n"
                  r"\* macro_f1: ([\d.]+)%", r.stdout)
    assert m, r.stdout[-2000:]
    correct = int(m.group(1))
    assert float(m.group(2)) == pytest.approx(round(100 * correct / 12, 1))
    assert "Note that load_model() is skipped" in r.stdout
    log = (out / "log.txt").read_text()
    assert m.group(0) in log and "Loading trainer: ZeroshotCLIP" in log and "** Config **" in log
    assert "Setting fixed seed: 1" not in log  # printed before the logger exists, as upstream
    # a second run into the same directory never overwrites log.txt
    r2 = run_train(base_args(pets_root, out) + ["--eval-only", "MODEL.BACKBONE.NAME", "tiny",
                                                "DATALOADER.NUM_WORKERS", "0"])
    assert r2.returncode == 0
    logs = sorted(os.listdir(out))
    assert "log.txt" in logs and any(re.fullmatch(r"log\.txt-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d", f) for f in logs)


def test_unknown_trainer_lists_names_and_suggests(pets_root, tmp_path):
    r = run_train(base_args(pets_root, tmp_path / "o", trainer="ZeroShotCLIP") + ["MODEL.BACKBONE.NAME", "tiny"])
    assert r.returncode != 0
    assert "ZeroshotCLIP2" in r.stderr and "do you mean [ZeroshotCLIP]" in r.stderr


def test_unknown_dataset_name(pets_root, tmp_path):
    cfg = tmp_path / "ds.yaml"
    cfg.write_text("DATASET:\n  NAME: \"OxfordPet\"\n")
    args = base_args(pets_root, tmp_path / "o")
    args[args.index("--dataset-config-file") + 1] = str(cfg)
    r = run_train(args + ["MODEL.BACKBONE.NAME", "tiny"])
    assert r.returncode != 0
    assert "do you mean [OxfordPets]" in r.stderr and "Caltech101" in r.stderr


def test_unknown_config_key_names_key_and_file(pets_root, tmp_path):
    cfg = tmp_path / "trainer.yaml"
    cfg.write_text("OPTIM:\n  NAME: sgd\n  LEARNING_RATE: 0.1\n")
    r = run_train(base_args(pets_root, tmp_path / "o") + ["--config-file", str(cfg)])
    assert r.returncode != 0
    assert "OPTIM.LEARNING_RATE" in r.stderr and str(cfg) in r.stderr
    r = run_train(base_args(pets_root, tmp_path / "o") + ["OPTIM.LERNING_RATE", "0.1"])
    assert r.returncode != 0 and "OPTIM.LERNING_RATE" in r.stderr and "command line" in r.stderr


def test_missing_weights_names_the_path(pets_root, tmp_path):
    r = run_train(base_args(pets_root, tmp_path / "o") + ["--eval-only", "MODEL.BACKBONE.NAME", "ViT-B/16"],
                  env_extra={"CLIP_WEIGHTS_DIR": str(tmp_path / "weights")})
    assert r.returncode != 0
    assert osp.join(str(tmp_path / "weights"), "ViT-B-16.pt") in r.stderr


def test_eval_only_with_model_dir_without_checkpoint(pets_root, tmp_path):
    missing = tmp_path / "no_such_run"
    r = run_train(base_args(pets_root, tmp_path / "o") + ["--eval-only", "--model-dir", str(missing),
                                                          "MODEL.BACKBONE.NAME", "tiny"])
    assert r.returncode != 0 and str(missing) in r.stderr
