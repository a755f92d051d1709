"""Crash-safe runs, as a user on a shared cluster meets them: runs killed at any point (SIGKILL, SIGTERM, a full
disk, SIGUSR1 preemption), two runs sharing an output directory, wrong inputs that used to succeed.

Runs are IVLP on the ``tiny`` backbone, 4 epochs x 4 batches, a checkpoint every epoch (about a second each).
Most start through ``tests/forkrun.py`` (one import, a fork per run); a few through ``python train.py`` where
the signal or the process boundary is the point.
"""
import json
import os
import os.path as osp
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO
from datasets.toy import write_coop_tree

EPOCHS = 4
OPTS = ["MODEL.BACKBONE.NAME", "tiny", "OPTIM.MAX_EPOCH", str(EPOCHS), "DATALOADER.NUM_WORKERS", "0",
        "TRAIN.PRINT_FREQ", "1", "TRAIN.CHECKPOINT_FREQ", "1", "DATASET.NUM_SHOTS", "16"]
CKPT = "VLPromptLearner"
KILL_SEED, N_KILLS = 20261206, 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_coop_tree(str(root), counts={"train": 4, "val": 1, "test": 3})  # 4 classes: 16 train, 12 test
    return str(root)


def args(data, out, *extra, seed=1, opts=()):
    return ["--root", data, "--seed", str(seed), "--trainer", "IVLP",
            "--dataset-config-file", "configs/datasets/oxford_pets.yaml",
            "--config-file", "configs/trainers/IVLP/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
            "--output-dir", str(out), *extra, *OPTS, *opts]


class ForkRunner:
    def __init__(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("DASSL_FAULT_KILL_AT", None)
        env.pop("DASSL_FAULT_TRACE", None)
        self.proc = subprocess.Popen([sys.executable, osp.join(REPO, "tests", "forkrun.py")], cwd=REPO, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, argv, out_file, **env):
        self.proc.stdin.write(json.dumps({"argv": argv, "env": env, "out": str(out_file)}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        reply["output"] = open(out_file).read()
        return reply

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def fork():
    runner = ForkRunner()
    yield runner
    runner.close()


def run_py(argv, timeout=300):
    return subprocess.run([sys.executable, "train.py", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYTHONUNBUFFERED="1"))


def final_state(out):
    return torch.load(osp.join(out, CKPT, f"model.pth.tar-{EPOCHS}"), weights_only=False)["state_dict"]


def final_accuracy(out):
    """The accuracy of the finished log (the one rule the scripts and extract_log.py use)."""
    from sweep.finished import run_finished

    ok, why = run_finished(str(out), "train")
    assert ok, why
    text = "".join(open(osp.join(out, n)).read() for n in sorted(os.listdir(out)) if n.startswith("log.txt"))
    return re.findall(r"^\* accuracy: ([\d.]+)%$", text, re.M)[-1]


def assert_same_state(a, b):
    assert set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data, fork):
    """An uninterrupted run, with the list of its crash points."""
    base = tmp_path_factory.mktemp("ref")
    trace = base / "trace.txt"
    r = fork(args(data, base / "out"), base / "stdout.txt", DASSL_FAULT_TRACE=str(trace))
    assert r["exit"] == 0, r["output"][-3000:]
    points = [line.split(" ", 1)[1] for line in trace.read_text().splitlines()]
    return {"out": base / "out", "state": final_state(base / "out"), "acc": final_accuracy(base / "out"),
            "points": points}


def copy_run(src, dst):
    shutil.copytree(src, dst)
    for n in os.listdir(dst):
        if n.startswith("log.txt"):
            os.remove(osp.join(dst, n))  # an unfinished run: the scripts run it again
    return dst


# ------------------------------------------------------------------------------------------------ kill -9
def test_kill_9_at_20_random_points_then_rerun_gives_identical_prompts_and_accuracy(tmp_path, data, fork, reference):
    points = reference["points"]
    assert len(points) > 100 and points.count("batch boundary") == EPOCHS * 4
    in_save = [i for i, p in enumerate(points, 1) if p != "batch boundary"]
    others = [i for i, p in enumerate(points, 1) if p == "batch boundary"]
    rng = random.Random(KILL_SEED)  # fixed kill points: half inside checkpoint writes, half between batches
    kills = sorted(rng.sample(in_save, N_KILLS // 2) + rng.sample(others, N_KILLS // 2))
    identical = 0
    for k in kills:
        out = tmp_path / f"kill{k}"
        r = fork(args(data, out), tmp_path / f"k{k}.txt", DASSL_FAULT_KILL_AT=str(k))
        assert r["signal"] == signal.SIGKILL, (k, r["output"][-2000:])
        r = fork(args(data, out), tmp_path / f"r{k}.txt")  # the same command again
        assert r["exit"] == 0, (k, points[k - 1], r["output"][-3000:])
        assert_same_state(final_state(out), reference["state"])
        assert final_accuracy(out) == reference["acc"]
        leftovers = [f for f in os.listdir(out / CKPT) if ".tmp" in f] + [f for f in os.listdir(out) if f == "run.lock"]
        assert not leftovers, (k, leftovers)
        identical += 1
    assert identical == N_KILLS
    print(f"kill points tried: {len(kills)} ({sum(points[k - 1] != 'batch boundary' for k in kills)} inside "
          f"checkpoint writes); identical final prompts and accuracy: {identical}/{len(kills)}")


def test_checkpoint_folder_without_pointer_and_stale_temp_files_start_fresh(tmp_path, data, fork, reference):
    """A kill -9 inside the first save left the folder without its pointer: rerunning used to stop for good."""
    out = tmp_path / "w"
    (out / CKPT).mkdir(parents=True)
    stale = out / CKPT / "model.pth.tar-1.tmp4242"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    r = fork(args(data, out), tmp_path / "o.txt")
    assert r["exit"] == 0, r["output"][-3000:]
    assert not stale.exists() and "Removed the temp file of an interrupted checkpoint write" in r["output"]
    assert "No checkpoint found, train from scratch" in r["output"]
    assert_same_state(final_state(out), reference["state"])


def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, data, fork, reference):
    out = copy_run(reference["out"], tmp_path / "w")
    newest = out / CKPT / f"model.pth.tar-{EPOCHS}"
    newest.write_bytes(newest.read_bytes()[:5000])  # truncated, as by a full disk or a killed copy
    r = fork(args(data, out), tmp_path / "o.txt")
    assert r["exit"] == 0, r["output"][-3000:]
    log = (out / "log.txt").read_text()
    assert f"resuming from model.pth.tar-{EPOCHS - 1}, the newest checkpoint that loads" in log
    assert "Previous epoch: 3" in log and "epoch [4/4]" in log and "epoch [3/4]" not in log
    assert_same_state(final_state(out), reference["state"])
    assert final_accuracy(out) == reference["acc"]


# ------------------------------------------------------------------------------------------------ logs, signals
def test_sigterm_leaves_the_complete_log_and_releases_the_lock(tmp_path, data):
    out = tmp_path / "t"
    p = subprocess.Popen([sys.executable, "train.py", *args(data, out, opts=["OPTIM.MAX_EPOCH", "300"])], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 120
    while not (out / CKPT / "model.pth.tar-2").exists():
        assert time.time() < deadline and p.poll() is None
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    stdout, _ = p.communicate(timeout=60)
    assert p.returncode == 128 + signal.SIGTERM
    log = (out / "log.txt").read_text()
    # everything printed after the logger started is in the log, up to the last line
    assert log and stdout.endswith(log)
    assert log.splitlines()[-1].startswith("Terminated (SIGTERM)")
    assert f"Checkpoint saved to {out / CKPT / 'model.pth.tar-2'}" in log
    assert not (out / "run.lock").exists()


def test_timestamped_log_names_never_collide(tmp_path):
    from dassl.utils.logger import new_log_path

    names = {new_log_path(str(tmp_path / "log.txt")) for _ in range(4)}  # within the same second
    assert len(names) == 4 and all(osp.isfile(n) for n in names)
    from sweep.finished import LOG_NAME_RE

    assert all(LOG_NAME_RE.match(osp.basename(n)) for n in names)  # all still read by extract_log.py


# ------------------------------------------------------------------------------------------------ lock, fingerprint
def test_second_run_into_a_busy_directory_stops_naming_the_holder(tmp_path, data):
    out = tmp_path / "busy"
    p = subprocess.Popen([sys.executable, "train.py", *args(data, out, opts=["OPTIM.MAX_EPOCH", "300"])], cwd=REPO,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "log.txt").exists():
            assert time.time() < deadline and p.poll() is None
            time.sleep(0.05)
        logs = sorted(f for f in os.listdir(out) if f.startswith("log.txt"))
        r = run_py(args(data, out, opts=["OPTIM.MAX_EPOCH", "300"]))
        assert r.returncode == 2
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and f"PID {p.pid} on host {socket.gethostname()}" in lines[0], r.stderr
        assert sorted(f for f in os.listdir(out) if f.startswith("log.txt")) == logs  # no log of its own
        assert p.poll() is None and (out / "run.lock").exists()  # the holder goes on
    finally:
        p.terminate()
        p.wait(timeout=60)


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, data, fork, reference):
    out = tmp_path / "stale"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (out / "run.lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                              "started": "2026-01-01 00:00:00", "proc_start": None}))
    r = fork(args(data, out), tmp_path / "o.txt")
    assert r["exit"] == 0, r["output"][-2000:]
    assert f"taking over the lock of PID {dead.pid}" in r["output"] and not (out / "run.lock").exists()
    assert_same_state(final_state(out), reference["state"])


@pytest.mark.parametrize("change,named", [
    (dict(seed=2), "SEED 1 -> 2"),
    (dict(opts=["OPTIM.MAX_EPOCH", "8"]), "OPTIM.MAX_EPOCH 4 -> 8"),
    (dict(opts=["DATASET.SUBSAMPLE_CLASSES", "base"]), "DATASET.SUBSAMPLE_CLASSES 'all' -> 'base'"),
])
def test_resuming_with_another_fingerprint_stops_and_says_what_differs(tmp_path, data, fork, reference, change,
                                                                        named):
    out = copy_run(reference["out"], tmp_path / "w")
    os.remove(out / CKPT / f"model.pth.tar-{EPOCHS}")  # unfinished: this run would resume from epoch 3
    before = {f: os.path.getmtime(osp.join(d, f)) for d, _, fs in os.walk(out) for f in fs}
    r = fork(args(data, out, **change), tmp_path / "o.txt")
    assert r["exit"] == 2
    errors = [line for line in r["output"].splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and named in errors[0] and "another --output-dir" in errors[0], r["output"][-2000:]
    assert {f: os.path.getmtime(osp.join(d, f)) for d, _, fs in os.walk(out) for f in fs} == before


# ------------------------------------------------------------------------------------------------ one clear line
def one_error_line(r):
    errors = [line for line in r["output"].splitlines() if line.startswith("Error:")]
    assert r["exit"] == 2 and len(errors) == 1 and "Traceback" not in r["output"], r["output"][-3000:]
    return errors[0]


def test_eval_only_load_epoch_without_model_dir_is_refused(tmp_path, data, fork):
    r = fork(args(data, tmp_path / "e", "--eval-only", "--load-epoch", "4"), tmp_path / "o.txt")
    assert "--load-epoch 4 needs --model-dir" in one_error_line(r)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_resume_from_a_wrong_path_is_refused(tmp_path, data, fork, kind):
    wrong = tmp_path / "wrong"
    if kind == "empty":
        wrong.mkdir()
    r = fork(args(data, tmp_path / "o", "--resume", str(wrong)), tmp_path / "o.txt")
    assert str(wrong) in one_error_line(r) and not (tmp_path / "o").exists()


def test_truncated_checkpoint_in_eval_only_names_the_file(tmp_path, data, fork, reference):
    run = copy_run(reference["out"], tmp_path / "w")
    ckpt = run / CKPT / "model.pth.tar-4"
    ckpt.write_bytes(ckpt.read_bytes()[:3000])
    r = fork(args(data, tmp_path / "e", "--eval-only", "--model-dir", str(run), "--load-epoch", "4"),
             tmp_path / "o.txt")
    line = one_error_line(r)
    assert str(ckpt) in line and "damaged" in line


def test_yaml_syntax_error_names_the_file_and_line(tmp_path, data, fork):
    bad = tmp_path / "bad.yaml"
    bad.write_text("OPTIM:\n  NAME: sgd\n   LR: 0.1\n")
    argv = args(data, tmp_path / "o")
    argv[argv.index("--config-file") + 1] = str(bad)
    line = one_error_line(fork(argv, tmp_path / "o.txt"))
    assert str(bad) in line and "line 3" in line and not (tmp_path / "o").exists()


def test_unwritable_output_directory(tmp_path, data, fork):
    (tmp_path / "file").write_text("not a folder")
    line = one_error_line(fork(args(data, tmp_path / "file" / "out"), tmp_path / "o.txt"))
    assert "cannot write to the output directory" in line and str(tmp_path / "file" / "out") in line


def test_non_finite_loss_is_one_line_and_keeps_the_last_good_checkpoint(tmp_path, data, fork):
    out = tmp_path / "nan"
    r = fork(args(data, out, opts=["OPTIM.LR", "1e30"]), tmp_path / "o.txt")  # diverges in epoch 2
    one_error_line(r)
    pointer = (out / CKPT / "checkpoint").read_text().strip()
    assert pointer == "model.pth.tar-1"
    ckpt = torch.load(out / CKPT / pointer, weights_only=False)
    assert ckpt["epoch"] == 1 and all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()
                                      if v.is_floating_point())


@pytest.mark.parametrize("workers", ["0", "1"])
def test_corrupt_image_says_how_to_check_and_rerender(tmp_path, fork, workers):
    root = tmp_path / "data"
    write_coop_tree(str(root), counts={"train": 4, "val": 1, "test": 3})
    images = sorted((root / "oxford_pets" / "images").iterdir())
    images[0].write_bytes(images[0].read_bytes()[:40])  # truncated
    line = one_error_line(fork(args(str(root), tmp_path / "o", opts=["DATALOADER.NUM_WORKERS", workers]),
                               tmp_path / "o.txt"))
    assert str(images[0]) in line and "python -m datasets.check" in line and "--force" in line


# ------------------------------------------------------------------------------------------------ full disk
def _can_mount_tmpfs():
    try:
        return subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, data):
    if not _can_mount_tmpfs():
        pytest.skip("cannot mount a small tmpfs here (needs `unshare -rm` with user namespaces): no full disk")
    mnt, keep = tmp_path / "mnt", tmp_path / "copy"
    mnt.mkdir()
    cmd = " ".join(["cd", REPO, "&&", "mount -t tmpfs -o size=96k tmpfs", str(mnt), "&&",
                    sys.executable, "train.py", *[f"'{a}'" for a in args(data, mnt / "out")],
                    f"> {tmp_path / 'stdout'} 2> {tmp_path / 'stderr'}; echo $? > {tmp_path / 'rc'};",
                    "cp -r", str(mnt / "out"), str(keep)])
    subprocess.run(["unshare", "-rm", "sh", "-c", cmd], timeout=300, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    stderr = (tmp_path / "stderr").read_text()
    assert (tmp_path / "rc").read_text().strip() == "2", stderr[-3000:]
    lines = stderr.strip().splitlines()
    m = re.fullmatch(r"Error: could not write checkpoint \S+model\.pth\.tar-(\d+): the disk is full; the previous "
                     r"checkpoint \S+model\.pth\.tar-(\d+) is kept\. Free some space, then rerun the same command "
                     r"to resume\.", lines[-1])
    assert len(lines) == 1 and m and int(m.group(2)) == int(m.group(1)) - 1 >= 1, stderr
    kept = f"model.pth.tar-{m.group(2)}"
    assert (keep / CKPT / "checkpoint").read_text().strip() == kept
    assert torch.load(keep / CKPT / kept, weights_only=False)["epoch"] == int(m.group(2))
    assert not [f for f in os.listdir(keep / CKPT) if ".tmp" in f]


# ------------------------------------------------------------------------------------------------ SIGUSR1
def test_sigusr1_checkpoints_mid_epoch_and_the_resumed_run_reproduces_the_uninterrupted_one(tmp_path, data, fork,
                                                                                             reference):
    """A preemption notice at a random batch (or during a checkpoint write) -> a checkpoint at the next batch
    boundary, exit status 3; rerunning the same command ends with bit-identical prompts and accuracy."""
    from dassl.engine.midepoch import PREEMPT_NAME

    points = reference["points"]
    rng = random.Random(KILL_SEED + 1)
    batch_points = [i for i, p in enumerate(points, 1) if p == "batch boundary"]
    save_points = [i for i, p in enumerate(points, 1) if p != "batch boundary"]
    chosen = sorted(rng.sample(batch_points[:-1], 4) + rng.sample(save_points, 2))
    for k in chosen:
        out = tmp_path / f"usr1_{k}"
        r = fork(args(data, out), tmp_path / f"u{k}.txt", DASSL_FAULT_USR1_AT=str(k))
        assert r["exit"] == 3, (k, r["output"][-3000:])
        m = re.search(r"Stopped on SIGUSR1 after epoch (\d+) batch (\d+)/4", r["output"])
        assert m, r["output"][-2000:]
        assert (out / CKPT / "checkpoint").read_text().strip() == PREEMPT_NAME
        r = fork(args(data, out), tmp_path / f"r{k}.txt")
        assert r["exit"] == 0, r["output"][-3000:]
        epoch, batch = int(m.group(1)), int(m.group(2))
        if batch < 4:
            assert f"Resuming epoch {epoch} after batch {batch} (preemption checkpoint)" in r["output"]
            assert f"epoch [{epoch}/4] batch [{batch}/4]" not in r["output"]
            assert f"epoch [{epoch}/4] batch [{batch + 1}/4]" in r["output"]
        assert_same_state(final_state(out), reference["state"])
        assert final_accuracy(out) == reference["acc"]
