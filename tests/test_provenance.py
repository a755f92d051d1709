"""``provenance.json``: the record of a finished run, of a killed run and of the run that resumed it, of a run
stopped by SIGTERM and of a failed one."""
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys

import pytest

from conftest import REPO
from datasets.toy import write_coop_tree
from dassl.utils.provenance import segment_state

# A run that gets a signal right after its first epoch's checkpoint.
SIGNAL_AFTER_FIRST_EPOCH = """
import os, runpy, signal, sys
sys.path.insert(0, {repo!r})
from dassl.engine.trainer import SimpleTrainer
after_epoch = SimpleTrainer.after_epoch
def killing_after_epoch(self):
    after_epoch(self)
    os.kill(os.getpid(), signal.{signal})
SimpleTrainer.after_epoch = killing_after_epoch
sys.argv = ["train.py"] + sys.argv[1:]
runpy.run_path(os.path.join({repo!r}, "train.py"), run_name="__main__")
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_coop_tree(str(root))  # 4 classes x (4 train, 1 val, 3 test)
    return root


def args(data, out, *flags):
    return ["--root", str(data), "--seed", "1", "--trainer", "CoOp",
            "--dataset-config-file", "configs/datasets/oxford_pets.yaml",
            "--config-file", "configs/trainers/CoOp/vit_b16_ep50.yaml", "--output-dir", str(out), *flags,
            "MODEL.BACKBONE.NAME", "tiny", "OPTIM.MAX_EPOCH", "2", "DATALOADER.NUM_WORKERS", "0",
            "TRAIN.CHECKPOINT_FREQ", "1"]


def run(cmd):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


def segments(out):
    with open(osp.join(out, "provenance.json")) as f:
        return json.load(f)["segments"]


def last_accuracy(log_path):
    with open(log_path) as f:
        return float(re.findall(r"\* accuracy: ([\d.]+)%", f.read())[-1])


def test_finished_run_record(data, tmp_path):
    out = tmp_path / "run"
    r = run([sys.executable, "train.py", *args(data, out)])
    assert r.returncode == 0, r.stderr[-2000:]
    (seg,) = segments(out)
    assert seg["status"] == "finished" and segment_state(seg) == "finished" and seg["error"] is None
    assert seg["log"] == "log.txt" and seg["command"][1:] == args(data, out)
    head = subprocess.run(["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert seg["git"]["commit"] == head and isinstance(seg["git"]["dirty"], bool)
    import open_clip
    import torch

    assert seg["versions"]["torch"] == torch.__version__.split("+")[0]
    assert seg["versions"]["open_clip"] == open_clip.__version__
    assert seg["device"]["type"] == "cpu" and seg["precision"] == {"configured": "fp16", "used": "fp32"}
    assert seg["config"]["OPTIM"]["MAX_EPOCH"] == 2 and seg["config"]["SEED"] == 1
    assert seg["start_epoch"] == 0 and seg["metrics"]["split"] == "test"
    assert seg["metrics"]["accuracy"] == pytest.approx(last_accuracy(out / "log.txt"), abs=0.05)
    assert 0 < seg["wall_time_s"] < 300 and seg["peak_memory_mb"]["cpu_rss"] > 50
    assert seg["end_time"] >= seg["start_time"]


def test_killed_run_then_resumed_run(data, tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "killed_train.py"
    script.write_text(SIGNAL_AFTER_FIRST_EPOCH.format(repo=REPO, signal="SIGKILL"))  # nothing can catch it
    proc = subprocess.Popen([sys.executable, str(script), *args(data, out)], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=300) == -signal.SIGKILL
    (killed,) = segments(out)
    # The record says the run never ended, and who ran it, so a reader can tell it died.
    assert killed["status"] == "running" and killed["end_time"] is None and killed["metrics"] is None
    assert killed["pid"] == proc.pid and segment_state(killed) == "died"
    assert segment_state(dict(killed, host="another-host")) == "running?"

    r = run([sys.executable, "train.py", *args(data, out)])  # the same command resumes from epoch 1
    assert r.returncode == 0, r.stderr[-2000:]
    first, resumed = segments(out)
    assert first == killed  # the killed run's segment is kept as it was
    assert resumed["status"] == "finished" and resumed["start_epoch"] == 1
    assert resumed["log"].startswith("log.txt-") and resumed["log"] != killed["log"]
    assert resumed["metrics"]["accuracy"] == pytest.approx(last_accuracy(out / resumed["log"]), abs=0.05)


def test_unreadable_record_is_kept_aside_and_failure_recorded(make_cfg, tmp_path):
    from dassl.utils.provenance import RunRecord, read_record

    cfg = make_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    (tmp_path / "provenance.json").write_text("{not json")
    with pytest.raises(ValueError, match="boom"):
        with RunRecord(cfg, argv=["train.py", "--x"]):
            raise ValueError("boom")
    (aside,) = [p for p in os.listdir(tmp_path) if p.startswith("provenance.json.unreadable-")]
    assert (tmp_path / aside).read_text() == "{not json"  # nothing overwritten silently
    (seg,) = read_record(str(tmp_path))["segments"]
    assert seg["status"] == "failed" and seg["error"] == "ValueError: boom" and seg["command"] == ["train.py", "--x"]
    assert seg["wall_time_s"] is not None and seg["metrics"] is None


def test_sigterm_is_recorded_as_terminated(data, tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "terminated_train.py"
    script.write_text(SIGNAL_AFTER_FIRST_EPOCH.format(repo=REPO, signal="SIGTERM"))  # kill, scancel, time limit
    r = run([sys.executable, str(script), *args(data, out)])
    assert r.returncode == 128 + signal.SIGTERM
    (seg,) = segments(out)
    assert seg["status"] == "terminated" and seg["error"] == "SIGTERM" and segment_state(seg) == "terminated"
    assert seg["end_time"] is not None and seg["start_epoch"] == 0 and seg["metrics"] is None
    assert osp.exists(out / "prompt_learner" / "model.pth.tar-1")  # the epoch finished before the signal
