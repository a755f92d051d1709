"""Trainer configs (every YAML merges; upstream values) and the sweep scripts (``scripts/<method>/*.sh``).

The scripts run with a fake ``PY`` that records its command line and writes the log a finished (or, on request,
an interrupted) ``train.py`` run would leave, so no training happens here.
"""
import glob
import os
import os.path as osp
import subprocess

import pytest

from conftest import REPO

CFG_DIR = osp.join(REPO, "configs", "trainers")
SCRIPTS = osp.join(REPO, "scripts")
COPY3 = "vit_b16_c2_ep20_batch4_4+4ctx-Copy3"
TESTENV = "vit_b16_c2_ep20_batch4_4+4ctx-testenv"
B2N = "vit_b16_c2_ep20_batch4_4+4ctx"
XD = "vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets"
FEW = "vit_b16_c2_ep50_batch4_4+4ctx_few_shot"
MAPLE_B2N = "vit_b16_c2_ep5_batch4_2ctx"
MAPLE_XD = "vit_b16_c2_ep5_batch4_2ctx_cross_datasets"
MAPLE_FEW = "vit_b16_c2_ep50_batch4_2ctx_few_shot"
COCOOP = "vit_b16_c4_ep10_batch1_ctxv1"


# ------------------------------------------------------------------------------------------------ configs
def merged(path):
    from dassl.config import get_cfg_default
    from trainers.config import extend_cfg

    cfg = get_cfg_default()
    extend_cfg(cfg)
    cfg.merge_from_file(path)
    return cfg


ALL_YAMLS = sorted(glob.glob(osp.join(CFG_DIR, "**", "*.yaml"), recursive=True))


@pytest.mark.parametrize("path", ALL_YAMLS, ids=[osp.relpath(p, CFG_DIR) for p in ALL_YAMLS])
def test_every_trainer_config_merges(path):
    cfg = merged(path)
    assert cfg.INPUT.SIZE == (224, 224)


COOP_NAMES = ["rn101", "rn101_ep50", "rn50", "rn50_ctxv1", "rn50_ep100", "rn50_ep50", "rn50_ep50_ctxv1",
              "vit_b16", "vit_b16_ctxv1", "vit_b16_ep100", "vit_b16_ep100_ctxv1", "vit_b16_ep50",
              "vit_b16_ep50_ctxv1", "vit_b32", "vit_b32_ep50"]
BACKBONES = {"rn50": "RN50", "rn101": "RN101", "vit_b16": "ViT-B/16", "vit_b32": "ViT-B/32"}
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def check_common(cfg, train_batch):
    """Keys shared by every CoOp / PromptSRC-family YAML (CoOp's and PromptSRC's ``configs/trainers/``)."""
    assert cfg.DATALOADER.TRAIN_X.BATCH_SIZE == train_batch
    assert cfg.DATALOADER.TEST.BATCH_SIZE == 100 and cfg.DATALOADER.NUM_WORKERS == 8
    assert cfg.INPUT.INTERPOLATION == "bicubic"
    assert tuple(cfg.INPUT.PIXEL_MEAN) == CLIP_MEAN and tuple(cfg.INPUT.PIXEL_STD) == CLIP_STD
    assert tuple(cfg.INPUT.TRANSFORMS) == ("random_resized_crop", "random_flip", "normalize")
    assert (cfg.OPTIM.NAME, cfg.OPTIM.LR_SCHEDULER, cfg.OPTIM.WARMUP_EPOCH, cfg.OPTIM.WARMUP_TYPE) == \
        ("sgd", "cosine", 1, "constant")
    assert (cfg.OPTIM.MOMENTUM, cfg.OPTIM.WEIGHT_DECAY) == (0.9, 5e-4)  # Dassl defaults, untouched


@pytest.mark.parametrize("name", COOP_NAMES)
def test_coop_configs_upstream_values(name):
    cfg = merged(osp.join(CFG_DIR, "CoOp", name + ".yaml"))
    check_common(cfg, 32)
    epochs = next((int(p[2:]) for p in name.split("_") if p.startswith("ep")), 200)
    assert (cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, cfg.OPTIM.WARMUP_CONS_LR) == (0.002, epochs, 1e-5)
    assert cfg.TRAIN.PRINT_FREQ == 5
    assert cfg.MODEL.BACKBONE.NAME == BACKBONES[name.split("_ep")[0].replace("_ctxv1", "")]
    assert cfg.TRAINER.COOP.CTX_INIT == ("a photo of a" if name.endswith("ctxv1") else "")
    assert cfg.TRAIN.CHECKPOINT_FREQ == 0


def test_coop_rn50_val_sets_only_batches_input_backbone():
    cfg = merged(osp.join(CFG_DIR, "CoOp", "rn50_val.yaml"))
    assert (cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.DATALOADER.TEST.BATCH_SIZE) == (200, 200)
    assert cfg.MODEL.BACKBONE.NAME == "RN50" and cfg.INPUT.INTERPOLATION == "bicubic"
    assert cfg.OPTIM.NAME == "adam" and cfg.OPTIM.MAX_EPOCH == 10  # Dassl defaults


def test_config_file_sets():
    names = {d: sorted(osp.basename(p)[:-5] for p in glob.glob(osp.join(CFG_DIR, d, "*.yaml")))
             for d in ("CoOp", "IVLP", "PromptSRC", "PromptOT", "MaPLe", "CoCoOp")}
    assert names["CoOp"] == sorted(COOP_NAMES + ["rn50_val"])
    assert names["PromptSRC"] == [B2N, XD, FEW]
    assert names["IVLP"] == [B2N, XD, FEW]
    assert names["PromptOT"] == sorted([COPY3, TESTENV, XD, FEW])
    assert names["MaPLe"] == sorted([MAPLE_B2N, MAPLE_XD, MAPLE_FEW])
    assert names["CoCoOp"] == sorted([COCOOP] + [f"vit_b16_c{n}_ep10_batch1" for n in (4, 8, 16)])


# file -> (node, LR, MAX_EPOCH, WARMUP_CONS_LR, depth V/T, (TEXT, IMAGE loss weights, GPA mean, std) or None)
VLP = {
    ("PromptSRC", B2N): ("PROMPTSRC", 0.0025, 20, 1e-5, 9, (25, 10, 15, 1)),
    ("PromptSRC", XD): ("PROMPTSRC", 0.0025, 20, 1e-5, 3, (25, 10, 6, 10)),
    ("PromptSRC", FEW): ("PROMPTSRC", 0.0025, 50, 1e-5, 9, (25, 10, 30, 30)),
    ("IVLP", B2N): ("IVLP", 0.0025, 20, 1e-5, 9, None),
    ("IVLP", XD): ("IVLP", 0.0025, 20, 1e-5, 3, None),
    ("IVLP", FEW): ("IVLP", 0.0025, 50, 1e-5, 9, None),
    ("PromptOT", COPY3): ("PROMPTOT", 0.005, 40, 1e-4, 12, (25, 10, 15, 1)),
    ("PromptOT", TESTENV): ("PROMPTOT", 0.005, 3, 1e-4, 12, (25, 10, 15, 1)),
    ("PromptOT", XD): ("PROMPTOT", 0.0025, 20, 1e-5, 3, (25, 10, 6, 10)),
    ("PromptOT", FEW): ("PROMPTOT", 0.0025, 50, 1e-5, 9, (25, 10, 30, 30)),
}


@pytest.mark.parametrize("key", sorted(VLP), ids=["/".join(k) for k in sorted(VLP)])
def test_vlp_configs_values(key):
    node, lr, epochs, cons_lr, depth, scl = VLP[key]
    cfg = merged(osp.join(CFG_DIR, key[0], key[1] + ".yaml"))
    check_common(cfg, 4)
    assert (cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, cfg.OPTIM.WARMUP_CONS_LR) == (lr, epochs, cons_lr)
    assert cfg.TRAIN.PRINT_FREQ == 20 and cfg.MODEL.BACKBONE.NAME == "ViT-B/16"
    t = cfg.TRAINER[node]
    assert (t.N_CTX_VISION, t.N_CTX_TEXT, t.CTX_INIT, t.PREC) == (4, 4, "a photo of a", "fp16")
    assert (t.PROMPT_DEPTH_VISION, t.PROMPT_DEPTH_TEXT) == (depth, depth)
    if scl:
        assert (t.TEXT_LOSS_WEIGHT, t.IMAGE_LOSS_WEIGHT, t.GPA_MEAN, t.GPA_STD) == scl
    # the Prompt-OT fork saves every epoch (set in its train.py); the YAMLs carry it so epoch 31 exists
    assert cfg.TRAIN.CHECKPOINT_FREQ == (1 if key[0] == "PromptOT" else 0)
    if key[0] == "PromptOT":  # project keys keep their defaults: lambda comes from LAMBDA / --div
        assert (t.LAMBDA, t.OT_SOLVER) == (10.0, "emd")


# file -> (LR, MAX_EPOCH, PROMPT_DEPTH): multimodal-prompt-learning's two configs; few-shot: project config
MAPLE = {MAPLE_B2N: (0.0035, 5, 9), MAPLE_XD: (0.0026, 2, 3), MAPLE_FEW: (0.0025, 50, 9)}


@pytest.mark.parametrize("name", sorted(MAPLE))
def test_maple_configs_values(name):
    lr, epochs, depth = MAPLE[name]
    cfg = merged(osp.join(CFG_DIR, "MaPLe", name + ".yaml"))
    check_common(cfg, 4)
    assert (cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, cfg.OPTIM.WARMUP_CONS_LR) == (lr, epochs, 1e-5)
    assert cfg.TRAIN.PRINT_FREQ == 20 and cfg.MODEL.BACKBONE.NAME == "ViT-B/16"
    t = cfg.TRAINER.MAPLE
    assert (t.N_CTX, t.CTX_INIT, t.PREC, t.PROMPT_DEPTH) == (2, "a photo of a", "fp16", depth)
    assert cfg.TRAIN.CHECKPOINT_FREQ == 0  # only the last epoch is saved, as upstream


# file -> (N_CTX, CTX_INIT): CoOp's configs/trainers/CoCoOp (cocoop.md table)
COCOOP_CFGS = {COCOOP: (4, "a photo of a"), "vit_b16_c4_ep10_batch1": (4, ""), "vit_b16_c8_ep10_batch1": (8, ""),
               "vit_b16_c16_ep10_batch1": (16, "")}


@pytest.mark.parametrize("name", sorted(COCOOP_CFGS))
def test_cocoop_configs_values(name):
    cfg = merged(osp.join(CFG_DIR, "CoCoOp", name + ".yaml"))
    check_common(cfg, 1)
    assert (cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, cfg.OPTIM.WARMUP_CONS_LR) == (0.002, 10, 1e-5)
    assert cfg.TRAIN.PRINT_FREQ == 20 and cfg.MODEL.BACKBONE.NAME == "ViT-B/16"
    t = cfg.TRAINER.COCOOP
    assert (t.N_CTX, t.CTX_INIT, t.PREC) == (*COCOOP_CFGS[name], "fp16")
    assert cfg.TRAIN.CHECKPOINT_FREQ == 0


def test_bench_step_configs_exist():
    """``python -m bench step`` silently runs without a config file it cannot find: every entry must exist."""
    from bench.step import TRAINER_CONFIGS

    assert {"CoOp", "CoCoOp", "IVLP", "MaPLe", "PromptSRC", "PromptOT"} <= set(TRAINER_CONFIGS)
    for trainer, path in TRAINER_CONFIGS.items():
        assert path.startswith(f"configs/trainers/{trainer}/") and osp.isfile(osp.join(REPO, path)), path
    assert TRAINER_CONFIGS["MaPLe"].endswith(MAPLE_B2N + ".yaml")
    assert TRAINER_CONFIGS["CoCoOp"].endswith(COCOOP + ".yaml")


# ------------------------------------------------------------------------------------------------ scripts
FAKE_PY = r"""#!/usr/bin/env bash
# Fake python: record cwd + argv, then leave the log a train.py run would (FAKE_MODE=partial: an unfinished one).
{ echo "cwd=$PWD"; printf '%s\n' "$@"; echo "--end--"; } >> "$FAKE_CALLS"
out=""; prev=""; eval_only=0
for a in "$@"; do
    [ "$prev" = --output-dir ] && out=$a
    [ "$a" = --eval-only ] && eval_only=1
    prev=$a
done
[ -n "$out" ] || exit 0
mkdir -p "$out"
log=$out/log.txt
s=0  # as train.py: log.txt, else log.txt-<time stamp> of the first free second
while [ -e "$log" ]; do log=$out/log.txt-$(date -d "+$s sec" +%Y-%m-%d-%H-%M-%S); s=$((s + 1)); done
if [ "${FAKE_MODE:-done}" = partial ]; then
    printf 'epoch [1/2] batch [1/1] loss 1.0\n' > "$log"
elif [ $eval_only = 1 ]; then
    printf 'Evaluate on the *test* set\n=> result\n* accuracy: 50.0%%\n' > "$log"
else
    printf 'epoch [2/2] batch [1/1] loss 1.0\nFinish training\n=> result\n* accuracy: 50.0%%\n' > "$log"
fi
"""


class Runner:
    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.data.mkdir()
        self.out = tmp_path / "out"
        self.calls_file = tmp_path / "calls.txt"
        fake = tmp_path / "fakepy"
        fake.write_text(FAKE_PY)
        fake.chmod(0o755)
        env = {k: v for k, v in os.environ.items()
               if k not in ("LOADEP", "SUBS", "SEEDS", "DATASETS", "DIV", "CFG", "OUTPUT", "DATA", "PY")}
        env.update(DATA=str(self.data), PY=str(fake), OUTPUT=str(self.out), FAKE_CALLS=str(self.calls_file))
        self.env = env

    def __call__(self, script, *args, cwd=None, **env):
        e = dict(self.env)
        for k, v in env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return subprocess.run(["bash", osp.join(SCRIPTS, script), *map(str, args)], env=e, cwd=cwd or str(self.tmp),
                              capture_output=True, text=True, timeout=60)

    def calls(self):
        """[(cwd, argv)] of every fake-python call so far."""
        if not self.calls_file.exists():
            return []
        out, cur = [], []
        for line in self.calls_file.read_text().splitlines():
            if line == "--end--":
                out.append((cur[0][len("cwd="):], cur[1:]))
                cur = []
            else:
                cur.append(line)
        return out

    def argvs(self):
        calls = self.calls()
        assert all(cwd == REPO for cwd, _ in calls)  # scripts run from the repository root, as upstream
        return [argv for _, argv in calls]

    def head(self, trainer, dataset, cfg, seed, out):
        return ["train.py", "--root", str(self.data), "--seed", str(seed), "--trainer", trainer,
                "--dataset-config-file", f"configs/datasets/{dataset}.yaml",
                "--config-file", f"configs/trainers/{trainer}/{cfg}.yaml", "--output-dir", str(self.out / out)]


@pytest.fixture
def run(tmp_path):
    return Runner(tmp_path)


# script -> sample positional arguments
ARGS = {
    "promptot/base2new_train.sh": ["oxford_pets", 1, "10.0", COPY3],
    "promptot/base2new_test.sh": ["oxford_pets", 1, "10.0", COPY3],
    "promptot/reproduce_base2novel_setting.sh": ["oxford_pets", 1, "weights", COPY3, "10.0"],
    "promptot/reproduce_base2novel_setting_testenv.sh": ["oxford_pets", 1, "weights", TESTENV, "10.0"],
    "promptot/xd_train.sh": ["imagenet", 1, "10.0", XD],
    "promptot/xd_test.sh": ["dtd", 1, XD, "10.0"],
    "promptot/few_shot.sh": ["dtd", 4, "10.0", FEW],
    "coop/few_shot.sh": ["dtd", "rn50", "end", 16, 1, "False"],
    "cocoop/few_shot.sh": ["dtd", COCOOP, 4],
    **{f"{m}/{s}": ["dtd", 1] for m in ("promptsrc", "ivlp", "coop", "maple", "cocoop")
       for s in ("base2new_train.sh", "base2new_test.sh", "xd_train.sh", "xd_test.sh")},
    **{f"{m}/reproduce_base2novel_setting.sh": ["dtd", 1, "weights"]
       for m in ("promptsrc", "ivlp", "coop", "maple", "cocoop")},
    **{f"{m}/few_shot.sh": ["dtd", 4] for m in ("promptsrc", "ivlp", "maple")},
    "zsclip/base2new_test.sh": ["dtd", 1],
    **{f"align/{s}": ["dtd", 1] for s in ("base2new_train.sh", "base2new_test.sh", "xd_train.sh", "xd_test.sh",
                                          "few_shot.sh")},
    "sotglp/few_shot.sh": ["dtd"],
    "sotglp/few_shot_projfree.sh": ["dtd", 1],
    "sotglp/eval_ood.sh": [1],
}


def test_every_method_has_the_upstream_script_names():
    for m in ("coop", "ivlp", "promptsrc", "promptot", "maple", "cocoop"):
        for s in ("base2new_train", "base2new_test", "reproduce_base2novel_setting", "xd_train", "xd_test",
                  "few_shot"):
            assert f"{m}/{s}.sh" in ARGS
    on_disk = {osp.relpath(p, SCRIPTS) for p in glob.glob(osp.join(SCRIPTS, "*", "*.sh"))
               if not p.startswith(osp.join(SCRIPTS, "slurm"))} - {"demo/run.sh", "own/example.sh"}
    assert on_disk == set(ARGS) | {"promptot/base2new_all.sh"}
    assert {f"align/{s}.sh" for s in ("base2new_train", "base2new_test", "xd_train", "xd_test", "few_shot")} <= on_disk


ALIGN_B2N, ALIGN_XD = "vit_b16_c2_ep5_batch4_2ctx", "vit_b16_c2_ep2_batch4_2ctx_cross_datasets"


def test_align_configs_values():
    """wds2014/ALIGN configs/trainers/MMP (code values), the paper's base-to-new and cross-dataset values."""
    expected = {ALIGN_B2N: (0.0025, 20, 4, 100), "sun397": (0.002, 20, 2, 4),
                "vit_b16_c2_ep8_batch4_2ctx_paper": (0.0035, 8, 4, 100), ALIGN_XD: (0.0026, 2, 4, 100)}
    assert sorted(osp.basename(p)[:-5] for p in glob.glob(osp.join(CFG_DIR, "ALIGN", "*.yaml"))) == sorted(expected)
    for name, (lr, epochs, sets, test_batch) in expected.items():
        cfg = merged(osp.join(CFG_DIR, "ALIGN", name + ".yaml"))
        if test_batch == 100:
            check_common(cfg, 4)
        t = cfg.TRAINER.ALIGN
        assert (cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH, cfg.DATALOADER.TEST.BATCH_SIZE) == (lr, epochs, test_batch)
        assert (t.TEXT_PROMPT_NUMBER, t.VISION_PROMPT_NUMBER, t.N_CTX, t.TEXT_PROMPT_DEPTH) == (sets, sets, 2, 9)
        assert (t.HIERARCHICAL, t.USECT, t.PREC, t.CTX_INIT) == (True, False, "fp16", "a photo of a")
        assert t.EPOCH_OVERRIDE == (name != ALIGN_XD)  # cross-dataset: the paper's 2 epochs hold


def test_align_scripts(run):
    assert run("align/base2new_train.sh", "dtd", 1).returncode == 0
    assert run("align/base2new_train.sh", "sun397", 1).returncode == 0  # upstream's lighter config
    r = run("align/base2new_train.sh", "dtd", 2, "vit_b16_c2_ep8_batch4_2ctx_paper", "OPTIM.MAX_EPOCH", "1")
    assert r.returncode == 0, r.stderr
    assert run("align/base2new_test.sh", "dtd", 1).returncode == 0
    assert run("align/xd_train.sh", "imagenet", 1).returncode == 0
    assert run("align/xd_test.sh", "imagenet_a", 1).returncode == 0
    assert run("align/few_shot.sh", "dtd", 4, SEEDS="3").returncode == 0
    r = run("align/base2new_train.sh", "dtd", 1, "nope")
    assert r.returncode == 2 and "no config configs/trainers/ALIGN/nope.yaml" in r.stderr

    def b2n(sub, ds, cfg, seed):
        return f"output/base2new/{sub}/{ds}/shots_16/ALIGN/{cfg}/seed{seed}"

    src = f"output/imagenet/ALIGN/{ALIGN_XD}_16shots/seed1"
    assert run.argvs() == [
        run.head("ALIGN", "dtd", ALIGN_B2N, 1, b2n("train_base", "dtd", ALIGN_B2N, 1)) + [
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"],
        run.head("ALIGN", "sun397", "sun397", 1, b2n("train_base", "sun397", "sun397", 1)) + [
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"],
        run.head("ALIGN", "dtd", "vit_b16_c2_ep8_batch4_2ctx_paper", 2,
                 b2n("train_base", "dtd", "vit_b16_c2_ep8_batch4_2ctx_paper", 2)) + [
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "1"],
        run.head("ALIGN", "dtd", ALIGN_B2N, 1, b2n("test_new", "dtd", ALIGN_B2N, 1)) + [
            "--model-dir", str(run.out / b2n("train_base", "dtd", ALIGN_B2N, 1)), "--load-epoch", "20", "--eval-only",
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new"],
        run.head("ALIGN", "imagenet", ALIGN_XD, 1, src) + ["DATASET.NUM_SHOTS", "16"],
        run.head("ALIGN", "imagenet_a", ALIGN_XD, 1, f"output/evaluation/ALIGN/{ALIGN_XD}_16shots/imagenet_a/seed1") + [
            "--model-dir", str(run.out / src), "--load-epoch", "2", "--eval-only"],
        run.head("ALIGN", "dtd", ALIGN_B2N, 3, f"output/dtd/ALIGN/{ALIGN_B2N}_4shots/seed3") + ["DATASET.NUM_SHOTS", "4"],
    ]


@pytest.mark.parametrize("script", sorted(ARGS))
def test_data_unset_or_missing_is_a_clear_error(run, script):
    r = run(script, *ARGS[script], DATA=None)
    assert r.returncode != 0 and "DATA is not set" in r.stderr, r.stderr
    r = run(script, *ARGS[script], DATA=run.tmp / "nowhere")
    assert r.returncode != 0 and "nowhere is not a directory" in r.stderr and "DATA" in r.stderr
    assert run.calls() == []


def test_missing_arguments_print_usage(run):
    r = run("promptot/base2new_train.sh", "oxford_pets", 1)
    assert r.returncode == 2 and "DATASET SEED DIV CFG" in r.stderr and "missing: DIV CFG" in r.stderr


def test_bad_values_are_named(run):
    r = run("promptot/xd_test.sh", "dtd", 1, "10.0", XD)  # DIV and CFG swapped
    assert r.returncode == 2 and "DIV (lambda) must be a number" in r.stderr and "DATASET SEED CFG DIV" in r.stderr
    r = run("promptot/base2new_train.sh", "oxford_pet", 1, "10.0", COPY3)
    assert r.returncode == 2 and "unknown dataset 'oxford_pet'" in r.stderr and "oxford_pets" in r.stderr
    r = run("promptot/base2new_train.sh", "oxford_pets", 1, "10.0", "Copy3")
    assert r.returncode == 2 and "no config configs/trainers/PromptOT/Copy3.yaml" in r.stderr and COPY3 in r.stderr
    r = run("promptsrc/base2new_train.sh", "dtd", 1, "OPTIM.MAX_EPOCH")
    assert r.returncode == 2 and "KEY VALUE pairs" in r.stderr
    r = run("promptsrc/base2new_test.sh", "dtd", 1)  # nothing trained
    assert r.returncode == 2 and "model directory" in r.stderr and "not found" in r.stderr
    r = run("cocoop/few_shot.sh", "dtd", 4)
    assert r.returncode == 2 and "DATASET CFG SHOTS" in r.stderr and "missing: SHOTS" in r.stderr
    r = run("cocoop/few_shot.sh", "dtd", "c16", 4)
    assert r.returncode == 2 and "no config configs/trainers/CoCoOp/c16.yaml" in r.stderr \
        and "vit_b16_c16_ep10_batch1" in r.stderr
    r = run("maple/few_shot.sh", "dtd", "four")
    assert r.returncode == 2 and "SHOTS must be an integer" in r.stderr
    assert run.calls() == []


def test_promptot_base2new_train_command_skip_and_resume(run):
    args = ["oxford_pets", 1, "10.0", COPY3, "MODEL.BACKBONE.NAME", "tiny"]
    out = f"output10.0/base2new/train_base/oxford_pets/shots_16/PromptOT/{COPY3}/seed1"
    expected = run.head("PromptOT", "oxford_pets", COPY3, 1, out) + [
        "--div", "10.0", "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base", "MODEL.BACKBONE.NAME", "tiny"]
    r = run("promptot/base2new_train.sh", *args, FAKE_MODE="partial")  # interrupted run
    assert r.returncode == 0, r.stderr
    r = run("promptot/base2new_train.sh", *args)  # same command again: train.py resumes in the same directory
    assert r.returncode == 0 and "Resuming" in r.stdout
    r = run("promptot/base2new_train.sh", *args)  # finished: skipped
    assert r.returncode == 0 and "Skipping" in r.stdout
    assert run.argvs() == [expected, expected]
    assert sorted(os.listdir(run.out / out))[0] == "log.txt" and len(os.listdir(run.out / out)) == 2


def test_promptot_base2new_test_and_reproduce(run):
    common = f"oxford_pets/shots_16/PromptOT/{COPY3}/seed2"
    train_dir = run.out / f"output1.0/base2new/train_base/{common}"
    train_dir.mkdir(parents=True)
    r = run("promptot/base2new_test.sh", "oxford_pets", 2, "1.0", COPY3, "OPTIM.MAX_EPOCH", "2")
    assert r.returncode == 0, r.stderr
    expected = [run.head("PromptOT", "oxford_pets", COPY3, 2, f"output1.0/base2new/test_{sub}/{common}") + [
        "--model-dir", str(train_dir), "--load-epoch", "31", "--eval-only", "--div", "1.0",
        "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", sub, "OPTIM.MAX_EPOCH", "2"] for sub in ("base", "new")]
    assert run.argvs() == expected
    r = run("promptot/base2new_test.sh", "oxford_pets", 2, "1.0", COPY3, "OPTIM.MAX_EPOCH", "2")
    assert r.returncode == 0 and r.stdout.count("Skipping") == 2 and len(run.argvs()) == 2

    # reproduce: WEIGHTSPATH/seed<S>, relative to the caller's directory; LOADEP from the environment
    (run.tmp / "w" / "seed3").mkdir(parents=True)
    r = run("promptot/reproduce_base2novel_setting.sh", "dtd", 3, "w", COPY3, "10.0", LOADEP=40, SUBS="new")
    assert r.returncode == 0, r.stderr
    assert run.argvs()[2] == run.head("PromptOT", "dtd", COPY3, 3,
                                      f"output10.0/base2new/test_new/dtd/shots_16/PromptOT/{COPY3}/seed3") + [
        "--model-dir", str(run.tmp / "w" / "seed3"), "--load-epoch", "40", "--eval-only", "--div", "10.0",
        "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new"]
    assert len(run.argvs()) == 3


@pytest.mark.parametrize("script", ["reproduce_base2novel_setting.sh", "reproduce_base2novel_setting_testenv.sh"])
def test_promptot_testenv_loads_epoch_1(run, script):
    (run.tmp / "w" / "seed2").mkdir(parents=True)
    r = run(f"promptot/{script}", "ucf101", 2, "w", TESTENV, "10.00")
    assert r.returncode == 0, r.stderr
    argvs = run.argvs()
    assert [a[a.index("--load-epoch") + 1] for a in argvs] == ["1", "1"]
    assert argvs[0][argvs[0].index("--output-dir") + 1].startswith(str(run.out / "output10.00/base2new/test_base"))


def test_promptot_xd_and_few_shot(run):
    assert run("promptot/xd_train.sh", "imagenet", 1, "10.0", XD).returncode == 0
    r = run("promptot/xd_test.sh", "dtd", 1, XD, "10.0")
    assert r.returncode == 0, r.stderr
    r = run("promptot/few_shot.sh", "dtd", 4, "10.0", FEW, SEEDS="1 2")
    assert r.returncode == 0, r.stderr
    src = f"output10.0/imagenet/PromptOT/{XD}_16shots/seed1"
    assert run.argvs() == [
        run.head("PromptOT", "imagenet", XD, 1, src) + ["--div", "10.0", "DATASET.NUM_SHOTS", "16"],
        run.head("PromptOT", "dtd", XD, 1, f"output10.0/evaluation/PromptOT/{XD}_16shots/dtd/seed1") + [
            "--model-dir", str(run.out / src), "--load-epoch", "11", "--eval-only", "--div", "10.0"],
        *[run.head("PromptOT", "dtd", FEW, s, f"output10.0/dtd/PromptOT/{FEW}_4shots/seed{s}") + [
            "--div", "10.0", "DATASET.NUM_SHOTS", "4"] for s in (1, 2)]]


# trainer -> (script folder, base-to-new CFG, its default LOADEP, xd CFG, its default LOADEP, few-shot CFG,
#             few-shot positionals before SHOTS); default LOADEP = the config's MAX_EPOCH = upstream's LOADEP
METHOD_SCRIPTS = {
    "PromptSRC": ("promptsrc", B2N, "20", XD, "20", FEW, []),
    "IVLP": ("ivlp", B2N, "20", XD, "20", FEW, []),
    "MaPLe": ("maple", MAPLE_B2N, "5", MAPLE_XD, "2", MAPLE_FEW, []),
    "CoCoOp": ("cocoop", COCOOP, "10", COCOOP, "10", "vit_b16_c16_ep10_batch1", ["vit_b16_c16_ep10_batch1"]),
}


@pytest.mark.parametrize("trainer", sorted(METHOD_SCRIPTS))
def test_method_scripts(run, trainer):
    m, b2n, b2n_ep, xd, xd_ep, few, few_args = METHOD_SCRIPTS[trainer]
    assert run(f"{m}/base2new_train.sh", "dtd", 1).returncode == 0
    assert run(f"{m}/base2new_test.sh", "dtd", 1).returncode == 0
    assert run(f"{m}/base2new_test.sh", "dtd", 1, "OPTIM.MAX_EPOCH", "2", SUBS="base").returncode == 0
    r = run(f"{m}/base2new_test.sh", "dtd", 1, SUBS="base new")
    assert r.returncode == 0 and r.stdout.count("Skipping") == 2  # both evaluated above
    (run.tmp / "w" / "base" / "seed2").mkdir(parents=True)
    assert run(f"{m}/reproduce_base2novel_setting.sh", "dtd", 2, "w").returncode == 0
    assert run(f"{m}/xd_train.sh", "imagenet", 1).returncode == 0
    assert run(f"{m}/xd_test.sh", "dtd", 1).returncode == 0
    assert run(f"{m}/few_shot.sh", "dtd", *few_args, 4, SEEDS="3").returncode == 0
    train = f"output/base2new/train_base/dtd/shots_16/{trainer}/{b2n}/seed1"

    def ev(sub, seed, model, ep, *more):
        out = f"output/base2new/test_{sub}/dtd/shots_16/{trainer}/{b2n}/seed{seed}"
        return run.head(trainer, "dtd", b2n, seed, out) + [
            "--model-dir", str(model), "--load-epoch", ep, "--eval-only",
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", sub, *more]

    src = f"output/imagenet/{trainer}/{xd}_16shots/seed1"
    assert run.argvs() == [
        run.head(trainer, "dtd", b2n, 1, train) + ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"],
        ev("new", 1, run.out / train, b2n_ep),
        ev("base", 1, run.out / train, "2", "OPTIM.MAX_EPOCH", "2"),  # LOADEP follows a MAX_EPOCH override
        ev("base", 2, run.tmp / "w" / "base" / "seed2", b2n_ep),
        ev("new", 2, run.tmp / "w" / "base" / "seed2", b2n_ep),
        run.head(trainer, "imagenet", xd, 1, src) + ["DATASET.NUM_SHOTS", "16"],
        run.head(trainer, "dtd", xd, 1, f"output/evaluation/{trainer}/{xd}_16shots/dtd/seed1") + [
            "--model-dir", str(run.out / src), "--load-epoch", xd_ep, "--eval-only"],
        run.head(trainer, "dtd", few, 3, f"output/dtd/{trainer}/{few}_4shots/seed3") + ["DATASET.NUM_SHOTS", "4"],
    ]
    assert run(f"{m}/base2new_test.sh", "dtd", 1, LOADEP=3, SUBS="all").returncode == 0  # LOADEP wins
    assert run.argvs()[-1][run.argvs()[-1].index("--load-epoch") + 1] == "3"


def test_sotglp_scripts(run):
    """Per-dataset configs (CFG = DATASET), 16 shots, seed 1 by default; the OOD evaluation of ImageNet's model."""
    assert run("sotglp/few_shot.sh", "dtd").returncode == 0
    assert run("sotglp/few_shot.sh", "dtd", 2, "OPTIM.MAX_EPOCH", "3").returncode == 0
    assert run("sotglp/few_shot.sh", "dtd", SEEDS="1 3").stdout.count("Skipping") == 1  # seed 1 done
    assert run("sotglp/few_shot_projfree.sh", "imagenet").returncode == 0
    assert run("sotglp/eval_ood.sh", 1).returncode != 0  # no ImageNet model yet: named, nothing run
    assert run("sotglp/few_shot.sh", "imagenet").returncode == 0
    assert run("sotglp/eval_ood.sh", 1).returncode == 0
    (run.tmp / "up").mkdir()
    assert run("sotglp/eval_ood.sh", 2, run.tmp / "up", VARIANT="_projfree").returncode == 0
    r = run("sotglp/few_shot.sh", "dtd", "x")
    assert r.returncode == 2 and "SEED must be a non-negative integer, got 'x'" in r.stderr

    def head(ds, seed, out):
        return run.head("SOTGLP", ds, ds, seed, out)

    few = "output/{0}/SOTGLP/{0}{1}_16shots/seed{2}"
    assert run.argvs() == [
        head("dtd", 1, few.format("dtd", "", 1)) + ["DATASET.NUM_SHOTS", "16"],
        head("dtd", 2, few.format("dtd", "", 2)) + ["DATASET.NUM_SHOTS", "16", "OPTIM.MAX_EPOCH", "3"],
        head("dtd", 3, few.format("dtd", "", 3)) + ["DATASET.NUM_SHOTS", "16"],
        head("imagenet", 1, few.format("imagenet", "_projfree", 1)) + [
            "DATASET.NUM_SHOTS", "16", "TRAINER.SOTGLP.LEARN_LOCAL_PROJ", "False"],
        head("imagenet", 1, few.format("imagenet", "", 1)) + ["DATASET.NUM_SHOTS", "16"],
        head("imagenet", 1, "output/evaluation/SOTGLP/imagenet_ood/seed1") + [
            "--model-dir", str(run.out / few.format("imagenet", "", 1)), "--load-epoch", "50", "--eval-only",
            "TRAINER.SOTGLP.EVAL_OOD", "True"],
        head("imagenet", 2, "output/evaluation/SOTGLP/imagenet_projfree_ood/seed2") + [
            "--model-dir", str(run.tmp / "up"), "--load-epoch", "50", "--eval-only", "TRAINER.SOTGLP.EVAL_OOD",
            "True"],
    ]


def test_sotglp_configs_released_values():
    """configs/trainers/SOTGLP/<dataset>.yaml: upstream run_<dataset>.sh values and the released data switches."""
    rows = {"imagenet": (50, 256, 0.01, 4, 5, 5), "caltech101": (200, 32, 0.005, 6, 0, 10),
            "oxford_pets": (200, 32, 0.005, 6, 0, 10), "stanford_cars": (200, 32, 0.005, 4, 0, 10),
            "oxford_flowers": (200, 32, 0.005, 6, 0, 10), "food101": (200, 128, 0.005, 6, 0, 10),
            "fgvc_aircraft": (200, 128, 0.01, 2, 0, 10), "sun397": (200, 128, 0.005, 4, 8, 10),
            "dtd": (200, 128, 0.002, 4, 0, 10), "eurosat": (200, 10, 0.001, 4, 0, 10),
            "ucf101": (200, 128, 0.005, 4, 0, 10)}
    names = sorted(osp.basename(p)[:-5] for p in glob.glob(osp.join(CFG_DIR, "SOTGLP", "*.yaml")))
    assert set(rows) <= set(names)
    for ds, (ep, bs, lr, n, seg, freq) in rows.items():
        cfg = merged(osp.join(CFG_DIR, "SOTGLP", ds + ".yaml"))
        t = cfg.TRAINER.SOTGLP
        assert (cfg.OPTIM.MAX_EPOCH, cfg.DATALOADER.TRAIN_X.BATCH_SIZE, cfg.OPTIM.LR) == (ep, bs, lr), ds
        assert (t.N_LOCAL_PROMPTS, t.CHECKPOINTING_SEGMENTS, t.EVAL_FREQ) == (n, seg, freq), ds
        assert (t.N_GLOBAL_PROMPTS, t.TOPK, t.PREC, t.EVAL_OOD) == (3, 10, "amp", ds == "imagenet"), ds
        assert (cfg.OPTIM.NAME, cfg.OPTIM.MOMENTUM, cfg.OPTIM.WEIGHT_DECAY, cfg.OPTIM.WARMUP_EPOCH) == \
            ("sgd", 0.9, 0.01, 0)
        assert cfg.DATASET.FEWSHOT_SAMPLER == "stratified_proportional" and cfg.DATASET.NUM_SHOTS == 16
        assert cfg.DATASET.FGVC_TRAIN_SPLIT == ("trainval" if ds == "fgvc_aircraft" else "train")
        assert (cfg.DATALOADER.TEST.BATCH_SIZE, cfg.TEST.FINAL_MODEL, cfg.MODEL.BACKBONE.NAME) == \
            (256, "last_step", "ViT-B/16")


def test_coop_scripts(run):
    for ds in ("imagenet", "dtd"):
        assert run("coop/base2new_train.sh", ds, 1).returncode == 0
        assert run("coop/base2new_test.sh", ds, 1).returncode == 0
    r = run("coop/few_shot.sh", "caltech101", "rn50", "middle", 8, 2, "True", "OPTIM.MAX_EPOCH", "1", SEEDS="1")
    assert r.returncode == 0, r.stderr
    assert run("coop/xd_train.sh", "imagenet", 2).returncode == 0
    assert run("coop/xd_test.sh", "dtd", 2).returncode == 0
    argvs = run.argvs()
    cfgs = {"imagenet": "vit_b16_ep50_ctxv1", "dtd": "vit_b16_ctxv1"}
    for i, (ds, ep) in enumerate([("imagenet", "50"), ("dtd", "200")]):
        common = f"{ds}/shots_16/CoOp/{cfgs[ds]}/seed1"
        assert argvs[2 * i] == run.head("CoOp", ds, cfgs[ds], 1, f"output/base2new/train_base/{common}") + [
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"]
        assert argvs[2 * i + 1] == run.head("CoOp", ds, cfgs[ds], 1, f"output/base2new/test_new/{common}") + [
            "--model-dir", str(run.out / f"output/base2new/train_base/{common}"), "--load-epoch", ep, "--eval-only",
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new"]
    assert argvs[4] == run.head("CoOp", "caltech101", "rn50", 1,
                                "output/caltech101/CoOp/rn50_2shots/nctx8_cscTrue_ctpmiddle/seed1") + [
        "DATASET.NUM_SHOTS", "2", "TRAINER.COOP.N_CTX", "8", "TRAINER.COOP.CSC", "True",
        "TRAINER.COOP.CLASS_TOKEN_POSITION", "middle", "OPTIM.MAX_EPOCH", "1"]
    src = "output/imagenet/CoOp/vit_b16_ep50_ctxv1_16shots/seed2"
    assert argvs[5:] == [
        run.head("CoOp", "imagenet", "vit_b16_ep50_ctxv1", 2, src) + ["DATASET.NUM_SHOTS", "16"],
        run.head("CoOp", "dtd", "vit_b16_ep50_ctxv1", 2,
                 "output/evaluation/CoOp/vit_b16_ep50_ctxv1_16shots/dtd/seed2") + [
            "--model-dir", str(run.out / src), "--load-epoch", "50", "--eval-only"]]


def test_output_defaults_to_the_repository_root(run, tmp_path):
    """Without OUTPUT the roots are output/ and output${DIV}/ under the repository, as upstream."""
    r = run("promptsrc/base2new_test.sh", "dtd", 1, OUTPUT=None)
    assert r.returncode == 2 and f"model directory output/base2new/train_base/dtd/shots_16/PromptSRC/{B2N}/seed1" \
        in r.stderr
    r = run("promptot/xd_test.sh", "dtd", 1, XD, "0.5", OUTPUT=None)
    assert r.returncode == 2 and f"output0.5/imagenet/PromptOT/{XD}_16shots/seed1 not found" in r.stderr


@pytest.mark.parametrize("driver", ["promptot/base2new_all.sh", "promptot/run_all.slurm"])
def test_sweep_driver_runs_train_then_test_and_keeps_results(run, driver):
    keep = run.out / "output2.0" / "keep.txt"
    keep.parent.mkdir(parents=True)
    keep.write_text("earlier results")
    for _ in range(2):
        r = run(driver, "2.0", COPY3, "MODEL.BACKBONE.NAME", "tiny", DATASETS="dtd eurosat", SEEDS="1",
                SLURM_SUBMIT_DIR=REPO)
        assert r.returncode == 0, r.stderr
    argvs = run.argvs()
    kinds = [(a[a.index("--dataset-config-file") + 1].split("/")[-1], a[a.index("--output-dir") + 1].split("/")[-6])
             if a[0] == "train.py" else tuple(a) for a in argvs]
    assert kinds == [("dtd.yaml", "train_base"), ("dtd.yaml", "test_base"), ("dtd.yaml", "test_new"),
                     ("eurosat.yaml", "train_base"), ("eurosat.yaml", "test_base"), ("eurosat.yaml", "test_new"),
                     ("extract_log.py", str(run.out / "output2.0")),
                     ("extract_log.py", str(run.out / "output2.0"))]  # 2nd sweep: everything skipped
    assert all(a[-2:] == ["MODEL.BACKBONE.NAME", "tiny"] for a in argvs[:6])
    assert keep.read_text() == "earlier results"


def test_sweep_goes_on_after_a_failure(run):
    r = run("promptot/base2new_all.sh", DATASETS="nope dtd", SEEDS="1")
    assert r.returncode == 1 and "Failed: nope/seed1" in r.stderr
    assert [a[a.index("--output-dir") + 1].split("/")[-6] for a in run.argvs() if a[0] == "train.py"] == \
        ["train_base", "test_base", "test_new"]
    assert f"output10.0/base2new/train_base/dtd/shots_16/PromptOT/{COPY3}/seed1" in run.argvs()[0][12]


def test_truncated_evaluation_log_is_rerun_and_agrees_with_extract_log(run):
    """One rule for "finished": a result block without its accuracy line (a run killed while printing it) is
    neither skipped by the scripts nor counted by extract_log.py."""
    import extract_log

    eval_dir = run.out / "output/base2new/test_new/dtd/shots_16/IVLP/vit_b16_c2_ep20_batch4_4+4ctx/seed1"
    eval_dir.mkdir(parents=True)
    (eval_dir / "log.txt").write_text("Evaluate on the *test* set\n=> result\n* total: 1,200\n* correct: 600\n")
    with pytest.raises(extract_log.SkippedLog):
        extract_log.parse_log_text((eval_dir / "log.txt").read_text())
    (run.out / "output/base2new/train_base/dtd/shots_16/IVLP/vit_b16_c2_ep20_batch4_4+4ctx/seed1").mkdir(parents=True)
    r = run("ivlp/base2new_test.sh", "dtd", 1, SUBS="new")
    assert r.returncode == 0 and "Skipping" not in r.stdout, r.stdout
    assert [a[a.index("--output-dir") + 1] for a in run.argvs()] == [str(eval_dir)]
    rerun_log = next(p for p in eval_dir.iterdir() if p.name != "log.txt")  # log.txt-<time stamp>
    assert extract_log.parse_log_text(rerun_log.read_text()).accuracy == 50.0
    r = run("ivlp/base2new_test.sh", "dtd", 1, SUBS="new")  # now finished by both rules: skipped
    assert "Skipping" in r.stdout and len(run.argvs()) == 1
