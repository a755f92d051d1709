"""A real base-to-novel sweep on the ``tiny`` backbone through the scripts, as a user runs it:
train 2 epochs, evaluate base and new (``--load-epoch``), resume an interrupted run, tabulate."""
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import REPO
from datasets.toy import write_coop_tree

FAST = ["MODEL.BACKBONE.NAME", "tiny", "OPTIM.MAX_EPOCH", "2", "DATALOADER.NUM_WORKERS", "0",
        "DATALOADER.TEST.BATCH_SIZE", "16", "TRAIN.PRINT_FREQ", "1"]
PROMPTOT_CFG = "vit_b16_c2_ep20_batch4_4+4ctx-Copy3"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """Train + evaluate IVLP, PromptSRC and PromptOT (seed 1) and CoOp once; return paths."""
    base = tmp_path_factory.mktemp("sweep")
    data, out = base / "data", base / "out"
    write_coop_tree(str(data), counts={"train": 4, "val": 1, "test": 3})
    env = dict(os.environ, DATA=str(data), OUTPUT=str(out), PY=sys.executable, PYTHONUNBUFFERED="1")

    def run(script, *args, **extra_env):
        r = subprocess.run(["bash", osp.join(REPO, "scripts", script), *args, *FAST], cwd=REPO,
                           env=dict(env, **extra_env), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{script} {args}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r

    for method in ("ivlp", "promptsrc"):
        run(f"{method}/base2new_train.sh", "oxford_pets", "1")
        run(f"{method}/base2new_test.sh", "oxford_pets", "1")
    run("promptot/base2new_train.sh", "oxford_pets", "1", "10.0", PROMPTOT_CFG)
    run("promptot/base2new_test.sh", "oxford_pets", "1", "10.0", PROMPTOT_CFG, LOADEP="1")
    return {"data": data, "out": out, "env": env, "run": run}


def train_dir(out, trainer, cfg, root="output"):
    return out / root / "base2new" / "train_base" / "oxford_pets" / "shots_16" / trainer / cfg / "seed1"


def test_each_trainer_trains_and_evaluates_through_scripts(sweep):
    out = sweep["out"]
    for trainer, cfg, root, ckpt in [("IVLP", "vit_b16_c2_ep20_batch4_4+4ctx", "output", "model.pth.tar-2"),
                                     ("PromptSRC", "vit_b16_c2_ep20_batch4_4+4ctx", "output", "model.pth.tar-2"),
                                     ("PromptOT", PROMPTOT_CFG, "output10.0", "model.pth.tar-1")]:
        d = train_dir(out, trainer, cfg, root)
        log = (d / "log.txt").read_text()
        assert "epoch [2/2]" in log and "Finish training" in log and "* accuracy:" in log
        assert (d / "VLPromptLearner" / "model.pth.tar-2").exists()
        test_new = out / root / "base2new" / "test_new" / "oxford_pets" / "shots_16" / trainer / cfg / "seed1"
        tlog = (test_new / "log.txt").read_text()
        assert f'{ckpt}" (epoch = {ckpt[-1]})' in tlog, tlog[-2000:]
        assert "SUBSAMPLE NEW CLASSES!" in tlog and re.search(r"\* accuracy: [\d.]+%", tlog)
    ot_log = (train_dir(out, "PromptOT", PROMPTOT_CFG, "output10.0") / "log.txt").read_text()
    assert "loss_ot" in ot_log and "lambda = 10.0" in ot_log
    assert (train_dir(out, "PromptOT", PROMPTOT_CFG, "output10.0") / "VLPromptLearner" / "model.pth.tar-1").exists()


def test_finished_run_is_skipped_and_interrupted_run_resumes_to_same_weights(sweep):
    d = train_dir(sweep["out"], "PromptOT", PROMPTOT_CFG, "output10.0")
    r = sweep["run"]("promptot/base2new_train.sh", "oxford_pets", "1", "10.0", PROMPTOT_CFG)
    assert "Skipping" in r.stdout
    ckpt_dir = d / "VLPromptLearner"
    final = torch.load(ckpt_dir / "model.pth.tar-2", weights_only=False)["state_dict"]
    # Simulate a job killed after epoch 1: no epoch-2 checkpoint, no finished log.
    os.remove(ckpt_dir / "model.pth.tar-2")
    (ckpt_dir / "checkpoint").write_text("model.pth.tar-1\n")
    shutil.move(d / "log.txt", d.parent / "killed_log.txt")
    r = sweep["run"]("promptot/base2new_train.sh", "oxford_pets", "1", "10.0", PROMPTOT_CFG)
    log = (d / "log.txt").read_text()
    assert "Previous epoch: 1" in log and "epoch [1/2]" not in log and "epoch [2/2]" in log
    resumed = torch.load(ckpt_dir / "model.pth.tar-2", weights_only=False)["state_dict"]
    assert set(resumed) == set(final)
    for k in final:
        torch.testing.assert_close(resumed[k], final[k], rtol=0, atol=0, msg=k)


def test_coop_through_scripts(sweep):
    sweep["run"]("coop/base2new_train.sh", "oxford_pets", "1")
    sweep["run"]("coop/base2new_test.sh", "oxford_pets", "1")
    trained = list((sweep["out"] / "output" / "base2new" / "train_base").rglob("prompt_learner/model.pth.tar-2"))
    assert len(trained) == 1
    new_logs = list((sweep["out"] / "output" / "base2new" / "test_new").rglob("CoOp/*/seed1/log.txt"))
    assert len(new_logs) == 1 and "=> result" in new_logs[0].read_text()


def test_extract_log_tabulates_the_sweep(sweep):
    import extract_log

    long_df, summary = extract_log.extract(str(sweep["out"]))
    rows = summary[(summary["dataset"] == "oxford_pets")]
    by_trainer = {r["trainer"]: r for _, r in rows.iterrows()}
    assert {"IVLP", "PromptSRC", "PromptOT"} <= set(by_trainer)
    for trainer, row in by_trainer.items():
        base, new = row["base"], row["new"]
        assert 0 <= base <= 100 and 0 <= new <= 100 and row["n_seeds"] == 1
        if base + new > 0:
            assert row["hm"] == pytest.approx(2 * base * new / (base + new), abs=0.01)
    # Base of Prompt-OT comes from its test_base run (epoch 1), not from the end-of-training test
    tb = (sweep["out"] / "output10.0" / "base2new" / "test_base" / "oxford_pets" / "shots_16" / "PromptOT"
          / PROMPTOT_CFG / "seed1" / "log.txt").read_text()
    acc = float(re.search(r"\* accuracy: ([\d.]+)%", tb).group(1))
    assert by_trainer["PromptOT"]["base"] == pytest.approx(acc)


@pytest.mark.parametrize("method,trainer,folder", [("maple", "MaPLe", "MultiModalPromptLearner"),
                                                   ("cocoop", "CoCoOp", "prompt_learner"),
                                                   ("align", "ALIGN", "MultiModalPromptLearner")])
def test_maple_and_cocoop_through_scripts(sweep, method, trainer, folder):
    sweep["run"](f"{method}/base2new_train.sh", "oxford_pets", "1")
    sweep["run"](f"{method}/base2new_test.sh", "oxford_pets", "1")
    out = sweep["out"] / "output" / "base2new"
    (ckpt,) = list((out / "train_base").rglob(f"{trainer}/*/seed1/{folder}/model.pth.tar-2"))
    state = torch.load(ckpt, weights_only=False)["state_dict"]
    assert "ctx" in {k.split(".")[-1] for k in state} and not any("token_" in k for k in state)
    (log,) = list((out / "test_new").rglob(f"{trainer}/*/seed1/log.txt"))
    text = log.read_text()
    assert "SUBSAMPLE NEW CLASSES!" in text and re.search(r"\* accuracy: [\d.]+%", text)
    assert 'model.pth.tar-2" (epoch = 2)' in text


def test_sotglp_few_shot_and_ood_through_scripts(sweep):
    """SOT-GLP through its scripts: few-shot on the base classes, then OOD detection with the held-out (new)
    classes as the OOD set; the logs' result, accuracy_global/local and OOD lines reach extract_log's tables."""
    import extract_log

    opts = ["DATASET.SUBSAMPLE_CLASSES", "base", "DATALOADER.TRAIN_X.BATCH_SIZE", "4"]
    sweep["run"]("sotglp/few_shot.sh", "oxford_pets", "1", *opts)
    sweep["run"]("sotglp/eval_ood.sh", "1", *opts, "TRAINER.SOTGLP.OOD_DATASETS", "['held_out_classes']",
                 SOURCE="oxford_pets")
    out = sweep["out"] / "output"
    run_dir = out / "oxford_pets" / "SOTGLP" / "oxford_pets_16shots" / "seed1"
    state = torch.load(run_dir / "SOTGLP" / "model.pth.tar-2", weights_only=False)["state_dict"]
    assert set(state) == {"prompt_learner.global_prompt", "prompt_learner.local_prompts",
                          "prompt_learner.local_proj.weight"}
    assert re.search(r"\* accuracy_local: [\d.]+%", (run_dir / "log.txt").read_text())
    ood_log = (out / "evaluation" / "SOTGLP" / "oxford_pets_ood" / "seed1" / "log.txt").read_text()
    assert 'model.pth.tar-2" (epoch = 2)' in ood_log and "=> OOD result (ID: OxfordPets, score: GL-MCM" in ood_log
    _, summary = extract_log.extract(str(sweep["out"]))
    rows = summary[summary["trainer"] == "SOTGLP"]
    few = rows[(rows["protocol"] == "fewshot") & (rows["dataset"] == "oxford_pets")]
    assert len(few) == 1 and 0 <= few.iloc[0]["acc"] <= 100
    ood = rows[rows["protocol"] == "ood"].set_index("dataset")
    assert {"held-out classes", "average"} <= set(ood.index)
    fpr = float(re.search(r"\* held-out classes: FPR95 ([\d.]+)%", ood_log).group(1))
    assert ood.loc["held-out classes", "fpr95"] == pytest.approx(fpr)
