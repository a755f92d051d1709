"""``python -m sweep``: the task list, and a local sweep on CPU job slots (mini-world, ``tiny`` backbone)."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO
from miniworld.write import write_miniworld

FAST = ["MODEL.BACKBONE.NAME", "tiny", "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TEST.BATCH_SIZE", "64"]


def sweep(*argv, **env):
    return subprocess.run([sys.executable, "-m", "sweep", *map(str, argv)], cwd=REPO, capture_output=True,
                          text=True, timeout=900, env=dict(os.environ, PYTHONUNBUFFERED="1", **env))


def test_task_list_is_one_task_per_dataset_and_seed_running_the_method_scripts():
    r = sweep("promptot", "base2new", "--datasets", "oxford_pets", "dtd", "--seeds", 1, 2, "--list",
              "OPTIM.MAX_EPOCH", "2")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [line.split("\t")[2] for line in lines] == ["oxford_pets seed1", "oxford_pets seed2", "dtd seed1",
                                                       "dtd seed2"]
    cfg = "vit_b16_c2_ep20_batch4_4+4ctx-Copy3"
    assert lines[1].split("\t")[3] == (
        f"bash {REPO}/scripts/promptot/base2new_train.sh oxford_pets 2 10.0 {cfg} OPTIM.MAX_EPOCH 2 && "
        f"bash {REPO}/scripts/promptot/base2new_test.sh oxford_pets 2 10.0 {cfg} OPTIM.MAX_EPOCH 2")
    r = sweep("ivlp", "xd", "--datasets", "dtd", "eurosat", "--seeds", 1, "--list")
    phases = [tuple(line.split("\t")[1:3]) for line in r.stdout.strip().splitlines()]
    assert phases == [("phase 0", "imagenet (source) seed1"), ("phase 1", "dtd seed1"), ("phase 1", "eurosat seed1")]
    assert sweep("ivlp", "fewshot", "--datasets", "dtd", "--shots", 1, 4, "--seeds", 1, 2, 3, "--count").stdout == "6\n"


@pytest.mark.parametrize("argv,named", [(["maple", "base2new"], "unknown method 'maple'"),
                                        (["ivlp", "b2n"], "unknown protocol 'b2n'"),
                                        (["ivlp", "base2new", "--datasets", "pets"], "unknown dataset 'pets'"),
                                        (["coop", "fewshot"], "CoOp's few_shot.sh"),
                                        (["ivlp", "base2new", "OPTIM.MAX_EPOCH"], "KEY VALUE pairs")])
def test_bad_sweep_arguments_are_one_line_with_status_2(argv, named):
    r = sweep("--list", *argv)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and named in r.stderr, r.stderr


def test_local_sweep_runs_two_tasks_at_a_time_skips_finished_ones_and_prints_the_table(tmp_path):
    data = tmp_path / "data"
    write_miniworld(str(data), "miniworld", {"train": 1, "val": 1, "test": 1}, log=lambda s: None)
    env = {"DATA": str(data), "OUTPUT": str(tmp_path / "out")}
    r = sweep("ivlp", "base2new", "--datasets", "miniworld", "--seeds", 1, 2, "--jobs", 2, *FAST, **env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    events = re.findall(r"^\[(\d)/2\] (running|done)\s+task (\d)", r.stdout, re.M)
    assert events[:2] == [("0", "running", "0"), ("0", "running", "1")]  # both slots busy at once
    assert sorted(e[2] for e in events if e[1] == "done") == ["0", "1"] and "ETA" in r.stdout
    table = re.search(r"^\| IVLP/\S+ +\| miniworld +\| ([\d.]+) ± [\d.]+ \| ([\d.]+) ± [\d.]+ \|", r.stdout, re.M)
    assert table, r.stdout[-2000:]
    assert (tmp_path / "out" / "output_csv" / "output" / "results_summary.csv").exists()
    again = sweep("ivlp", "base2new", "--datasets", "miniworld", "--seeds", 1, 2, "--jobs", 2, *FAST, **env)
    assert again.returncode == 0
    logs = [(tmp_path / "out" / "output" / "sweep_logs" / f"task000{i}.log").read_text() for i in (0, 1)]
    assert all("Training finished" in log and "Skipping" in log and "train.py" not in log for log in logs)
    # a task that fails (its data are missing) is reported and sets the exit status; the others still run
    r = sweep("ivlp", "base2new", "--datasets", "miniworld_fog", "miniworld", "--seeds", 1, "--jobs", 1, *FAST, **env)
    assert r.returncode == 1 and re.search(r"failed \(exit 2\) task 0 \(miniworld_fog seed1\)", r.stdout)
    assert "Failed tasks (rerun the same command to retry them): 0 (miniworld_fog seed1)" in r.stderr
