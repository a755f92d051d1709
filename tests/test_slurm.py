"""Sweeps on a real Slurm: a one-node cluster on localhost (``tests/slurm_cluster.py``), the mini-world rendered
small, IVLP on the ``tiny`` backbone. Skipped, with the reason, where Slurm cannot be started."""
import csv
import os
import os.path as osp
import re
import subprocess
import sys
import time

import pytest
import torch

import slurm_cluster
from conftest import REPO
from miniworld.write import write_miniworld

FAST = ["MODEL.BACKBONE.NAME", "tiny", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TEST.BATCH_SIZE", "64", "TRAIN.PRINT_FREQ", "1"]
CFG = "vit_b16_c2_ep20_batch4_4+4ctx"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c, why = slurm_cluster.start(str(tmp_path_factory.mktemp("slurm")))
    if c is None:
        pytest.skip(why)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mini"))
    for variant in ("miniworld", "miniworld_fog"):
        write_miniworld(root, variant, {"train": 1, "val": 1, "test": 1}, log=lambda s: None)
    return root


def submit(cluster, data, out, *argv):
    env = dict(cluster.env, DATA=data, OUTPUT=str(out), PY=sys.executable, PYTHONUNBUFFERED="1")
    r = subprocess.run(["bash", osp.join(REPO, "scripts", "slurm", "sweep.sh"), "ivlp", "base2new", *argv,
                        "--gpus", "0", "--cpus", "1", *FAST], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return re.findall(r"^Submitted (?:array )?job (\d+)", r.stdout, re.M)


def wait_for(cluster, jobs, timeout, on_pending=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = {}
        for j in jobs:
            states.update(cluster.job_state(j))
        if states and all(s in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") for s in states.values()):
            return states
        if on_pending:
            on_pending(states)
        time.sleep(1)
    raise AssertionError(f"jobs {jobs} still running after {timeout} s: {states}")


def accuracy(log_dir):
    logs = sorted(n for n in os.listdir(log_dir) if n.startswith("log.txt"))
    text = "".join(open(osp.join(log_dir, n)).read() for n in logs)
    return float(re.findall(r"^\* accuracy: ([\d.]+)%$", text, re.M)[-1])


def run_dir(out, split, dataset, seed):
    return osp.join(out, "output", "base2new", split, dataset, "shots_16", "IVLP", CFG, f"seed{seed}")


def test_slurm_array_sweep_2_datasets_x_2_seeds_then_the_table(cluster, data, tmp_path):
    out = tmp_path / "out"
    t0 = time.time()
    jobs = submit(cluster, data, out, "--datasets", "miniworld", "miniworld_fog", "--seeds", "1", "2",
                  "OPTIM.MAX_EPOCH", "1")
    assert len(jobs) == 2  # the array, then the table job that depends on it
    states = wait_for(cluster, jobs, 900)
    wall = time.time() - t0
    assert set(states.values()) == {"COMPLETED"}, states
    assert len(states) == 5  # 4 array tasks + the table job
    with open(out / "output_csv" / "output" / "results_summary.csv") as f:
        rows = {r["dataset"]: r for r in csv.DictReader(f) if r["trainer"] == "IVLP"}
    for dataset in ("miniworld", "miniworld_fog"):
        for split, where in (("base", "train_base"), ("new", "test_new")):  # IVLP tests base after training
            seeds = [accuracy(run_dir(out, where, dataset, s)) for s in (1, 2)]
            assert float(rows[dataset][split]) == pytest.approx(sum(seeds) / 2, abs=1e-6)
        assert int(float(rows[dataset]["n_seeds"])) == 2
    print(f"Slurm sweep (2 datasets x 2 seeds, 4 array tasks + table job): {wall:.0f} s wall")


EPOCHS = 25


def test_preempted_task_checkpoints_requeues_and_matches_an_uninterrupted_run(cluster, data, tmp_path):
    """USR1 to the running array task (as ``--signal=B:USR1@<s>`` sends it): checkpoint, requeue, resume."""
    # 25 epochs of 20 batches (seconds of training after epoch 2): the notice lands during training however
    # fast or loaded the machine is (with 6 epochs a fast machine finished before the signal arrived)
    more = ["--datasets", "miniworld", "--seeds", "1", "OPTIM.MAX_EPOCH", str(EPOCHS),
            "DATALOADER.TRAIN_X.BATCH_SIZE", "1"]
    # the uninterrupted run: the same task, run locally
    ref = tmp_path / "ref"
    env = dict(os.environ, DATA=data, OUTPUT=str(ref), PYTHONUNBUFFERED="1")
    local = subprocess.Popen([sys.executable, "-m", "sweep", "--task", "0", "ivlp", "base2new", *more, *FAST],
                             cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "out"
    jobs = submit(cluster, data, out, *more)
    train_log = osp.join(run_dir(out, "train_base", "miniworld", 1), "log.txt")
    deadline = time.time() + 600
    while not (osp.exists(train_log) and f"epoch [2/{EPOCHS}] batch [2/" in open(train_log).read()):
        assert time.time() < deadline, "the array task did not reach epoch 2"
        time.sleep(0.2)
    cluster.run("scancel", "--batch", "--signal=USR1", f"{jobs[0]}_0")  # what --signal=B:USR1@<s> sends

    def no_requeue_delay(states):  # Slurm holds a requeued job for a while (BeginTime): release it now
        for job, state in states.items():
            if state == "PENDING" and "BeginTime" in cluster.run("scontrol", "show", "job", job, check=False):
                cluster.run("scontrol", "update", f"JobId={job}", "StartTime=now", check=False)

    states = wait_for(cluster, jobs, 900, on_pending=no_requeue_delay)
    assert set(states.values()) == {"COMPLETED"}, states
    task_log = open(out / "output" / "slurm_logs" / f"ivlp-base2new-{jobs[0]}_0.out").read()
    slurmd_log = open(osp.join(cluster.dir, "slurmd.log")).read()[-3000:]
    stop = re.search(r"Stopped on SIGUSR1 after epoch (\d+) batch (\d+)/20", task_log)
    assert stop and "requeueing job" in task_log and "(restart 1)" in task_log, task_log + slurmd_log
    if stop.group(2) != "20":
        assert f"Resuming epoch {stop.group(1)} after batch {stop.group(2)} (preemption checkpoint)" in task_log
    assert local.wait(timeout=600) == 0
    name = f"VLPromptLearner/model.pth.tar-{EPOCHS}"
    a = torch.load(osp.join(run_dir(out, "train_base", "miniworld", 1), name), weights_only=False)["state_dict"]
    b = torch.load(osp.join(run_dir(ref, "train_base", "miniworld", 1), name), weights_only=False)["state_dict"]
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    for split in ("train_base", "test_new"):
        assert accuracy(run_dir(out, split, "miniworld", 1)) == accuracy(run_dir(ref, split, "miniworld", 1))
    print(f"requeue test: preempted in epoch {stop.group(1)} after batch {stop.group(2)}/20, requeued once; "
          "final prompts and accuracies identical to the uninterrupted run")
