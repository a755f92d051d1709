"""Tests of extract_log.py on synthetic Dassl output trees (issue #5).

Expected numbers are written out by hand below (which seed's log counts) and aggregated with the ``statistics``
module, independently of the pandas code under test. Std = population std (``statistics.pstdev``), the convention
of CoOp's ``parse_test_res.py``.
"""
import math
import os
import os.path as osp
import statistics as st
import subprocess
import sys
import warnings

import pandas as pd
import pytest

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(HERE)
sys.path[:0] = [HERE, REPO]

import extract_log  # noqa: E402
import logtree as lt  # noqa: E402
from extract_log import LogWarning, SkippedLog, extract, harmonic_mean, parse_log_text  # noqa: E402

POT, POT_CFG = "PromptOT", "vit_b16_c2_ep20_batch4_4+4ctx-Copy3"
IVLP, IVLP_CFG = "IVLP", "vit_b16_c2_ep20_batch4_4+4ctx"
ALIGN, ALIGN_CFG = "ALIGN", "vit_b16_c2_ep5_batch4_2ctx"
XD_CFG = "vit_b16_c2_ep2_batch4_2ctx_cross_datasets"
SOTGLP = "SOTGLP"
B2N_EXP, OTHER_EXP = "output10.0", "output"
LOADEP = 31

# Base-to-new values written into the logs, per seed 1..3 (None: no such run).
B2N_LOGS = {
    "caltech101": {"train": [97.0, 97.5, 97.2], "test_base": [98.1, 98.3, 97.9], "test_new": [94.0, 94.2, 93.9]},
    "dtd": {"train": [82.1, 83.4, 82.9], "test_base": None, "test_new": [60.5, 63.2, None]},
    "eurosat": {"train": [91.0, None, 92.0], "test_base": [92.5, None, 93.1], "test_new": [70.0, None, 72.6]},
    "food101": {"train": [90.1, 90.4, 90.2], "test_base": [90.7, 0.0, 90.9], "test_new": [91.5, 91.6, 0.0]},
}
OLD_FORMAT = {"ucf101": {"train": [84.37, 85.12, 86.03], "test_new": [78.15, 79.02, 77.88]}}  # 2 decimals, tabs
# Special cases (written by build_tree on top of the tables):
#   dtd seed1 train_base: log.txt truncated at epoch 20, log.txt-2024-05-01-10-00-00 resumes and ends with 82.1
#   eurosat seed1 test_new: log.txt 70.0 < log.txt-2025-03-18-10-00-00 74.3 (wins) < log.txt-2025-03-19-09-30-00
#       truncated inside the result block (skipped, so 74.3 stays)
#   food101 seed2 test_base: empty log (skipped, Base falls back to train_base 90.4 at epoch 40)
#   food101 seed3 test_new: "* accuracy: n/a%" (skipped)
RERUN_NEW = 74.3

# What the summary must contain (hand-derived from the comments above).
EXPECTED_BASE = {  # dataset: (values, epochs, source dirs)
    "caltech101": ([98.1, 98.3, 97.9], "31", "test_base"),
    "dtd": ([82.1, 83.4, 82.9], "40", "train_base"),
    "eurosat": ([92.5, 93.1], "31", "test_base"),
    "food101": ([90.7, 90.4, 90.9], "31,40", "test_base,train_base"),
    "ucf101": ([84.37, 85.12, 86.03], "40", "train_base"),
}
EXPECTED_NEW = {
    "caltech101": [94.0, 94.2, 93.9], "dtd": [60.5, 63.2], "eurosat": [RERUN_NEW, 72.6], "food101": [91.5, 91.6],
    "ucf101": [78.15, 79.02, 77.88],
}
EXPECTED_MISSING = {"caltech101": "", "dtd": "new:3", "eurosat": "base:2 new:2", "food101": "new:3", "ucf101": ""}
EXPECTED_SEEDS = {"caltech101": "1,2,3", "dtd": "1,2,3", "eurosat": "1,3", "food101": "1,2,3", "ucf101": "1,2,3"}
EXPECTED_SKIPPED = {
    ("train_base", "dtd", "seed1", "log.txt"),
    ("test_new", "eurosat", "seed1", "log.txt-2025-03-19-09-30-00"),
    ("test_base", "food101", "seed2", "log.txt"),
    ("test_new", "food101", "seed3", "log.txt"),
}

IVLP_BASE = [80.0, 81.0, 79.5]  # dtd, train_base only: no test_new at all
ALIGN_TRAIN, ALIGN_NEW = 97.9, 94.5  # train_vis_2 dir holding the training log and a re-run eval with SUBSAMPLE new

XD_SOURCE = [72.1, 71.8, 72.3]  # ImageNet source training, 2 epochs
XD_TARGETS = {"caltech101": [93.9, 94.1, 93.7], "dtd": [46.2, 47.0, 46.9]}
DG_TARGETS = {"imagenetv2": [64.5, 64.7, 64.6], "imagenet_a": [50.8, 51.2, 50.9]}
FEWSHOT = {"dtd": [75.5, 74.9], "eurosat": [90.1]}  # SOTGLP, 20 epochs, mid-training test at epoch 10
OOD_ID = [75.0, 75.4]
OOD_SETS = {  # set: [(fpr95, auroc) per seed]
    "iNaturalist": [(14.0, 96.5), (15.0, 96.9)], "SUN": [(25.0, 94.1), (24.2, 94.3)],
    "Places": [(33.1, 91.0), (32.5, 91.4)], "Textures": [(39.0, 90.2), (38.1, 90.6)],
    "average": [(27.8, 93.0), (27.5, 93.3)],
}

APPROX = dict(rel=1e-9, abs=1e-9)


# ----------------------------------------------------------------------------------------------------------------
# Tree builders

def build_b2n(root):
    """The base-to-new part of the tree (exp ``output10.0``)."""
    for dataset, logs in B2N_LOGS.items():
        for seed in (1, 2, 3):
            train_acc = logs["train"][seed - 1]
            train_dir = lt.b2n_dir(root, "train_base", dataset, POT, POT_CFG, seed)
            if train_acc is not None:
                lt.write_log(train_dir, lt.train_log(train_acc, train_dir, dataset=dataset))
            for split, subsample in (("test_base", "base"), ("test_new", "new")):
                values = logs[split]
                if values is None or values[seed - 1] is None:
                    continue
                out = lt.b2n_dir(root, split, dataset, POT, POT_CFG, seed)
                lt.write_log(out, lt.eval_log(values[seed - 1], out, train_dir, LOADEP, dataset=dataset,
                                              subsample=subsample))
    for dataset, logs in OLD_FORMAT.items():
        for seed in (1, 2, 3):
            train_dir = lt.b2n_dir(root, "train_base", dataset, POT, POT_CFG, seed)
            lt.write_log(train_dir, lt.train_log(logs["train"][seed - 1], train_dir, dataset=dataset,
                                                 old_format=True, decimals=2))
            out = lt.b2n_dir(root, "test_new", dataset, POT, POT_CFG, seed)
            lt.write_log(out, lt.eval_log(logs["test_new"][seed - 1], out, train_dir, LOADEP, dataset=dataset,
                                          decimals=2))
    build_b2n_special_cases(root)
    for seed, acc in enumerate(IVLP_BASE, 1):
        out = lt.b2n_dir(root, "train_base", "dtd", IVLP, IVLP_CFG, seed)
        lt.write_log(out, lt.train_log(acc, out, trainer=IVLP, max_epoch=20))
    align_dir = lt.b2n_dir(root, "train_vis_2", "caltech101", ALIGN, ALIGN_CFG, 1)
    lt.write_log(align_dir, lt.train_log(ALIGN_TRAIN, align_dir, trainer=ALIGN, dataset="caltech101", max_epoch=20,
                                         model_name="MultiModalPromptLearner"))
    lt.write_log(align_dir, lt.eval_log(ALIGN_NEW, align_dir, align_dir, 20, trainer=ALIGN, dataset="caltech101",
                                        model_name="MultiModalPromptLearner"), "log.txt-2023-10-25-12-00-00")


def build_b2n_special_cases(root):
    """Truncated / re-run / empty / malformed logs described next to B2N_LOGS."""
    dtd1 = lt.b2n_dir(root, "train_base", "dtd", POT, POT_CFG, 1)
    lt.write_log(dtd1, lt.train_log(99.9, dtd1, stop_after_epoch=20))
    lt.write_log(dtd1, lt.train_log(82.1, dtd1, resume_from=20), "log.txt-2024-05-01-10-00-00")
    train_dir = lt.b2n_dir(root, "train_base", "eurosat", POT, POT_CFG, 1)
    eur1 = lt.b2n_dir(root, "test_new", "eurosat", POT, POT_CFG, 1)
    lt.write_log(eur1, lt.eval_log(RERUN_NEW, eur1, train_dir, LOADEP, dataset="eurosat"),
                 "log.txt-2025-03-18-10-00-00")
    cut = lt.cut_before(lt.eval_log(55.5, eur1, train_dir, LOADEP, dataset="eurosat"), "* accuracy")
    lt.write_log(eur1, cut, "log.txt-2025-03-19-09-30-00")
    lt.write_log(lt.b2n_dir(root, "test_base", "food101", POT, POT_CFG, 2), "")
    food3 = lt.b2n_dir(root, "test_new", "food101", POT, POT_CFG, 3)
    text = lt.eval_log(91.7, food3, train_dir, LOADEP, dataset="food101").replace("* accuracy: 91.7%",
                                                                                 "* accuracy: n/a%")
    lt.write_log(food3, text)


def build_other(root):
    """Cross-dataset, DG, few-shot and OOD trees (exp ``output``)."""
    for seed, acc in enumerate(XD_SOURCE, 1):
        out = lt.fewshot_dir(root, "imagenet", ALIGN, XD_CFG, seed)
        lt.write_log(out, lt.train_log(acc, out, trainer=ALIGN, dataset="imagenet", subsample="all", max_epoch=2,
                                       model_name="MultiModalPromptLearner"))
        for dataset, values in {**XD_TARGETS, **DG_TARGETS}.items():
            target = lt.xd_dir(root, dataset, ALIGN, XD_CFG, seed)
            lt.write_log(target, lt.eval_log(values[seed - 1], target, out, 2, trainer=ALIGN, dataset=dataset,
                                             subsample="all", model_name="MultiModalPromptLearner"))
    extra = ("* accuracy_global: 70.0%", "* accuracy_local: 65.0%")
    for dataset, values in FEWSHOT.items():
        for seed, acc in enumerate(values, 1):
            out = lt.fewshot_dir(root, dataset, SOTGLP, dataset, seed)
            lt.write_log(out, lt.train_log(acc, out, trainer=SOTGLP, dataset=dataset, subsample="all",
                                           max_epoch=20, model_name=SOTGLP, periodic_test={10: 60.0}, extra=extra))
    for seed, acc in enumerate(OOD_ID, 1):
        out = os.path.join(root, "evaluation", SOTGLP, "imagenet_ood", f"seed{seed}")
        rows = [(name, *values[seed - 1]) for name, values in OOD_SETS.items()]
        lt.write_log(out, lt.eval_log(acc, out, "output/imagenet/SOTGLP/imagenet_16shots/seed1", 50,
                                      trainer=SOTGLP, dataset="imagenet", subsample="all", model_name=SOTGLP,
                                      ood=rows))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The synthetic output root, with the extract() result and the warnings it raised."""
    root = tmp_path_factory.mktemp("runs")
    build_b2n(str(root / B2N_EXP))
    build_other(str(root / OTHER_EXP))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        long_df, summary = extract(str(root))
    return {"root": str(root), "long": long_df, "summary": summary,
            "warnings": [str(w.message) for w in caught if issubclass(w.category, LogWarning)]}


def row(summary, exp, protocol, trainer, dataset):
    """The single summary row of one method and dataset."""
    sel = summary[(summary.exp == exp) & (summary.protocol == protocol) & (summary.trainer == trainer)
                  & (summary.dataset == dataset)]
    assert len(sel) == 1, (exp, protocol, trainer, dataset, sel)
    return sel.iloc[0]


def check_stats(r, prefix, values):
    """Mean, population std and count of one metric against the statistics module."""
    assert r[prefix] == pytest.approx(st.mean(values), **APPROX)
    assert r[f"{prefix}_std"] == pytest.approx(st.pstdev(values), **APPROX)
    assert r[f"{prefix}_n"] == len(values)


# ----------------------------------------------------------------------------------------------------------------
# Summary numbers

def test_base2new_rows(tree):
    for dataset, (base, epochs, source) in EXPECTED_BASE.items():
        r = row(tree["summary"], B2N_EXP, "base2new", POT, dataset)
        new = EXPECTED_NEW[dataset]
        assert (r.cfg, r.shots) == (POT_CFG, 16)
        check_stats(r, "base", base)
        check_stats(r, "new", new)
        hm = 2 * st.mean(base) * st.mean(new) / (st.mean(base) + st.mean(new))
        assert r.hm == pytest.approx(hm, **APPROX)
        assert (r.base_epoch, r.new_epoch, r.base_from) == (epochs, "31", source)
        assert (r.seeds, r.n_seeds) == (EXPECTED_SEEDS[dataset], len(EXPECTED_SEEDS[dataset].split(",")))
        assert (r.missing_seeds if isinstance(r.missing_seeds, str) else "") == EXPECTED_MISSING[dataset]


def test_base2new_average_row(tree):
    r = row(tree["summary"], B2N_EXP, "base2new", POT, "Average")
    base = st.mean(st.mean(v[0]) for v in EXPECTED_BASE.values())
    new = st.mean(st.mean(v) for v in EXPECTED_NEW.values())
    assert r.base == pytest.approx(base, **APPROX)
    assert r.new == pytest.approx(new, **APPROX)
    assert r.hm == pytest.approx(2 * base * new / (base + new), **APPROX)
    assert r.n_datasets == len(EXPECTED_BASE)


def test_missing_test_new_leaves_blank_cells(tree):
    r = row(tree["summary"], B2N_EXP, "base2new", IVLP, "dtd")
    check_stats(r, "base", IVLP_BASE)
    assert pd.isna(r.new) and pd.isna(r.hm) and pd.isna(r.new_n)
    assert r.missing_seeds == "new:1,2,3"
    avg = row(tree["summary"], B2N_EXP, "base2new", IVLP, "Average")
    assert avg.base == pytest.approx(st.mean(IVLP_BASE)) and pd.isna(avg.new) and pd.isna(avg.hm)
    assert any("IVLP" in w and "Average HM" in w for w in tree["warnings"])


def test_new_class_rerun_in_training_dir_counts_as_new(tree):
    """ALIGN's upstream test script writes its eval log into the training directory (ALIGN's ``scripts/mmp/base_to_new_test.sh``)."""
    r = row(tree["summary"], B2N_EXP, "base2new", ALIGN, "caltech101")
    assert (r.base, r.new, r.base_n, r.new_n) == (ALIGN_TRAIN, ALIGN_NEW, 1, 1)
    assert (r.base_epoch, r.new_epoch) == ("20", "20")


def test_cross_dataset_and_dg(tree):
    for protocol, targets in (("xd", XD_TARGETS), ("dg", DG_TARGETS)):
        for dataset, values in targets.items():
            r = row(tree["summary"], OTHER_EXP, protocol, ALIGN, dataset)
            check_stats(r, "acc", values)
            assert (r.acc_epoch, r.cfg, r.shots, r.seeds) == ("2", XD_CFG, 16, "1,2,3")
        source = row(tree["summary"], OTHER_EXP, protocol, ALIGN, "imagenet (source)")
        check_stats(source, "acc", XD_SOURCE)
        avg = row(tree["summary"], OTHER_EXP, protocol, ALIGN, "Average")
        assert avg.acc == pytest.approx(st.mean(st.mean(v) for v in targets.values()), **APPROX)
        assert avg.n_datasets == len(targets)


def test_fewshot(tree):
    summary = tree["summary"]
    for dataset, values in FEWSHOT.items():
        r = row(summary, OTHER_EXP, "fewshot", SOTGLP, dataset)
        check_stats(r, "acc", values)  # the end-of-training test, not the epoch-10 one
        assert (r.acc_epoch, r.cfg, r.shots) == ("20", "{dataset}", 16)  # per-dataset cfg names merged
    assert row(summary, OTHER_EXP, "fewshot", SOTGLP, "eurosat").missing_seeds == "2"
    check_stats(row(summary, OTHER_EXP, "fewshot", ALIGN, "imagenet"), "acc", XD_SOURCE)


def test_ood(tree):
    summary = tree["summary"]
    r = row(summary, OTHER_EXP, "ood", SOTGLP, "imagenet")
    check_stats(r, "acc", OOD_ID)
    assert r.acc_epoch == "50"
    for name, values in OOD_SETS.items():
        r = row(summary, OTHER_EXP, "ood", SOTGLP, name)
        fpr, auroc = zip(*values)
        assert (r.fpr95, r.fpr95_std) == (pytest.approx(st.mean(fpr)), pytest.approx(st.pstdev(fpr)))
        assert (r.auroc, r.auroc_std) == (pytest.approx(st.mean(auroc)), pytest.approx(st.pstdev(auroc)))
        assert r.n_seeds == 2
    assert not (summary[summary.protocol == "ood"].dataset == "Average").any()


def test_summary_has_exactly_the_expected_rows(tree):
    got = sorted(map(tuple, tree["summary"][["exp", "protocol", "trainer", "dataset"]].values.tolist()))
    want = [(B2N_EXP, "base2new", POT, d) for d in [*EXPECTED_BASE, "Average"]]
    want += [(B2N_EXP, "base2new", IVLP, d) for d in ("dtd", "Average")]
    want += [(B2N_EXP, "base2new", ALIGN, d) for d in ("caltech101", "Average")]
    want += [(OTHER_EXP, "xd", ALIGN, d) for d in [*XD_TARGETS, "imagenet (source)", "Average"]]
    want += [(OTHER_EXP, "dg", ALIGN, d) for d in [*DG_TARGETS, "imagenet (source)", "Average"]]
    want += [(OTHER_EXP, "fewshot", SOTGLP, d) for d in [*FEWSHOT, "Average"]]
    want += [(OTHER_EXP, "fewshot", ALIGN, d) for d in ("imagenet", "Average")]
    want += [(OTHER_EXP, "ood", SOTGLP, d) for d in ["imagenet", *OOD_SETS]]
    assert got == sorted(want)
    assert list(tree["summary"].columns) == extract_log.SUMMARY_COLUMNS


def test_promptsrc_average_hm():
    assert round(harmonic_mean(84.26, 76.10), 2) == 79.97
    assert math.isnan(harmonic_mean(84.26, float("nan")))


PROMPTSRC_LIKE = {"caltech101": (90.00, 60.00), "dtd": (78.52, 92.20)}  # means: 84.26 / 76.10


def build_promptsrc_like(root):
    """Two datasets, one seed, old 2-decimal logs, whose means are PromptSRC's 84.26 / 76.10."""
    for dataset, (base, new) in PROMPTSRC_LIKE.items():
        train_dir = lt.b2n_dir(root, "train_base", dataset, POT, POT_CFG, 1)
        lt.write_log(train_dir, lt.train_log(base, train_dir, dataset=dataset, old_format=True, decimals=2))
        out = lt.b2n_dir(root, "test_new", dataset, POT, POT_CFG, 1)
        lt.write_log(out, lt.eval_log(new, out, train_dir, LOADEP, dataset=dataset, decimals=2))


def test_average_is_hm_of_means_not_mean_of_hms(tmp_path):
    build_promptsrc_like(str(tmp_path))
    _, summary = extract(str(tmp_path))
    avg = summary[summary.dataset == "Average"].iloc[0]
    assert (round(avg.base, 2), round(avg.new, 2), round(avg.hm, 2)) == (84.26, 76.10, 79.97)
    mean_of_hms = st.mean(2 * b * n / (b + n) for b, n in PROMPTSRC_LIKE.values())
    assert round(mean_of_hms, 2) != 79.97


# ----------------------------------------------------------------------------------------------------------------
# Long table, warnings, log parsing

def test_long_table(tree):
    long_df = tree["long"]
    assert list(long_df.columns) == extract_log.LONG_COLUMNS
    eur = long_df[(long_df.dataset == "eurosat") & (long_df.novel == "test_new") & (long_df.seed == 1)]
    assert list(eur.file) == ["log.txt-2025-03-18-10-00-00"] and list(eur.accuracy) == [RERUN_NEW]
    assert list(eur.n_logs) == [3]
    dtd = long_df[(long_df.dataset == "dtd") & (long_df.novel == "train_base") & (long_df.trainer == POT)
                  & (long_df.seed == 1)].iloc[0]
    assert (dtd.file, dtd.epoch, dtd.max_epoch, dtd.kind, dtd.elapsed) == (
        "log.txt-2024-05-01-10-00-00", 40, 40, "train", "0:01:02")
    cal = long_df[(long_df.dataset == "caltech101") & (long_df.trainer == POT)]
    assert not cal[cal.novel == "train_base"].used.any() and cal[cal.novel != "train_base"].used.all()
    first = cal[(cal.novel == "test_base") & (cal.seed == 1)].iloc[0]
    assert (first.total, first.correct, first.error, first.macro_f1, first.batch_size) == (
        lt.TOTAL, 1962, pytest.approx(1.9), pytest.approx(97.7), 4)
    assert (first.task_name, first.exp, first.split, first.kind) == ("base2new", B2N_EXP, "base", "eval")
    assert (long_df.protocol == "ood").sum() == len(OOD_SETS) * 2 + 2


def test_skipped_logs_are_warned_by_name(tree):
    skipped = [w for w in tree["warnings"] if w.startswith("skipping ")]
    paths = [w.split()[1].rstrip(":").split(os.sep) for w in skipped]
    got = {(p[p.index("base2new") + 1], p[p.index("base2new") + 2], p[-2], p[-1]) for p in paths}
    assert got == EXPECTED_SKIPPED
    assert len(skipped) == len(EXPECTED_SKIPPED)


@pytest.mark.parametrize("path, want", [
    ("output10.0/base2new/test_new/dtd/shots_16/PromptOT/cfg/seed2",
     dict(exp="output10.0", protocol="base2new", novel="test_new", dataset="dtd", shots=16, trainer="PromptOT",
          cfg="cfg", seed=2, path_split="new", task_name="base2new")),
    ("train_base/dtd/shots_16/PromptOT/cfg/seed1",  # root = the base2new folder
     dict(exp="", protocol="base2new", novel="train_base", path_split="base", task_name="base2new")),
    ("output/base2new/train_vis_2/dtd/shots_16/MMP/cfg/seed1", dict(exp="output", novel="train_vis_2",
                                                                   path_split="base")),
    ("output/evaluation/ALIGN/cfg_16shots/dtd/seed3", dict(exp="output", protocol="xd", dataset="dtd", shots=16,
                                                         trainer="ALIGN", cfg="cfg", seed=3)),
    ("evaluation/ALIGN/cfg_16shots/imagenet_sketch/seed1", dict(protocol="dg", dataset="imagenet_sketch")),
    ("evaluation/SOTGLP/imagenet_ood/seed1", dict(protocol="ood", dataset="imagenet", cfg="imagenet_ood",
                                                 path_split="id", shots=None)),
    ("output/dtd/PromptSRC/vit_b16_c2_ep50_batch4_4+4ctx_few_shot_4shots/seed1",
     dict(protocol="fewshot", dataset="dtd", shots=4, trainer="PromptSRC",
          cfg="vit_b16_c2_ep50_batch4_4+4ctx_few_shot")),
    ("dtd/CoOp/rn50_ep50_2shots/nctx16_cscFalse_ctpend/seed1",
     dict(protocol="fewshot", shots=2, trainer="CoOp", cfg="rn50_ep50/nctx16_cscFalse_ctpend")),
    ("fewshot/dtd/MaPLe_2/shots_8/seed1", dict(exp="fewshot", protocol="fewshot", shots=8, trainer="MaPLe_2")),
    ("output/eurosat/SOTGLP/eurosat_16shots/seed1", dict(protocol="fewshot", cfg="{dataset}", dataset="eurosat")),
    ("ZeroshotCLIP/vit_b16/dtd", dict(protocol="other", cfg="ZeroshotCLIP/vit_b16/dtd", seed=None)),
])
def test_parse_run_path(path, want):
    info = extract_log.parse_run_path(path.split("/"))
    assert {k: info[k] for k in want} == want


def test_parse_eval_log_epoch_and_block():
    res = parse_log_text(lt.eval_log(61.2, "out", "model", 31))
    assert (res.kind, res.accuracy, res.epoch, res.total, res.correct, res.subsample) == (
        "eval", 61.2, 31, lt.TOTAL, 1224, "new")


def test_parse_training_log_variants():
    old = parse_log_text(lt.train_log(84.37, "out", old_format=True, decimals=2, max_epoch=5))
    assert (old.kind, old.accuracy, old.epoch, old.max_epoch, old.error) == ("train", 84.37, 5, 5, 15.63)
    resumed = parse_log_text(lt.train_log(80.0, "out", max_epoch=5, resume_from=5))  # nothing left to train
    assert (resumed.accuracy, resumed.epoch) == (80.0, 5)
    periodic = parse_log_text(lt.train_log(75.0, "out", max_epoch=20, periodic_test={10: 60.0, 20: 74.0}))
    assert (periodic.accuracy, periodic.epoch) == (75.0, 20)


@pytest.mark.parametrize("text, reason", [
    (lt.train_log(80.0, "out", stop_after_epoch=3), "Finish training"),
    (lt.cut_before(lt.train_log(80.0, "out"), "* accuracy"), "accuracy"),
    (lt.cut_before(lt.train_log(80.0, "out"), "=> result"), "no '=> result'"),
    ("", "no '=> result'"),
    ("\x00\x01 binary garbage", "no '=> result'"),
])
def test_unusable_logs_raise(text, reason):
    with pytest.raises(SkippedLog, match=reason):
        parse_log_text(text)


def test_empty_root_and_unknown_layout(tmp_path):
    long_df, summary = extract(str(tmp_path))
    assert long_df.empty and summary.empty and list(summary.columns) == extract_log.SUMMARY_COLUMNS
    odd = tmp_path / "somewhere" / "else"
    lt.write_log(str(odd), lt.eval_log(50.0, "out", "model", 3))
    long_df, summary = extract(str(tmp_path))
    assert list(long_df.protocol) == ["other"] and list(summary.cfg) == ["somewhere/else"]
    with pytest.raises(FileNotFoundError):
        extract(str(tmp_path / "missing"))


def test_markdown(tree):
    text = extract_log.format_markdown(tree["summary"])
    for header in ("## base2new", "## xd", "## dg", "## fewshot", "## ood", "| Average"):
        assert header in text
    r = row(tree["summary"], B2N_EXP, "base2new", POT, "caltech101")
    assert f"| {r.base:.2f} ± {r.base_std:.2f} | {r.new:.2f} ± {r.new_std:.2f} | {r.hm:.2f} |" in text


# ----------------------------------------------------------------------------------------------------------------
# Command line and output files

def run_cli(*args):
    return subprocess.run([sys.executable, osp.join(REPO, "extract_log.py"), *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120)


def test_cli_plot(tmp_path):
    build_promptsrc_like(str(tmp_path / "output10.0"))
    out = tmp_path / "csv"
    proc = run_cli(str(tmp_path / "output10.0"), "--output_path", str(out), "--plot")
    assert proc.returncode == 0, proc.stderr
    assert "| 84.26 " in proc.stdout and "| 79.97 " in proc.stdout
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_positional(tree, tmp_path):
    out = tmp_path / "csv"
    proc = run_cli(tree["root"], "--output_path", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "## base2new" in proc.stdout and "warning: skipping" in proc.stderr
    assert set(os.listdir(out)) == {"results_long.csv", "results_summary.csv", "results_summary.md",
                                    extract_log.MANIFEST_NAME}
    assert (out / "results_summary.md").read_text() in proc.stdout
    got = pd.read_csv(out / "results_summary.csv", keep_default_na=False, na_values=[""])
    want = tree["summary"]
    for col in ("base", "base_std", "new", "new_std", "hm", "acc", "acc_std", "fpr95", "auroc"):
        pd.testing.assert_series_equal(got[col], want[col].astype(float), check_names=False)
    assert len(pd.read_csv(out / "results_long.csv")) == len(tree["long"])


def test_cli_save_patch_form(tree, tmp_path):
    out = tmp_path / "csv"
    proc = run_cli("--save_patch", tree["root"], "--output_path", str(out))
    assert proc.returncode == 0, proc.stderr
    assert set(os.listdir(out)) == {"results_long.csv", "results_summary.csv", "results_summary.md",
                                    extract_log.MANIFEST_NAME}


def test_overwrite_policy(tree, tmp_path, capsys):
    out = str(tmp_path / "csv")
    args = [tree["root"], "--output_path", out]
    assert extract_log.main(args) == 0
    # Our own files are replaced in place ...
    assert extract_log.main(args) == 0
    assert not [n for n in os.listdir(out) if n.startswith("results_summary-")]
    # ... a file we did not write (or that was edited) is kept, and the new one gets a time-stamped name.
    edited = osp.join(out, "results_summary.csv")
    with open(edited, "w") as f:
        f.write("hand-edited\n")
    capsys.readouterr()
    assert extract_log.main(args) == 0
    assert "results_summary.csv exists" in capsys.readouterr().err
    assert open(edited).read() == "hand-edited\n"
    assert len([n for n in os.listdir(out) if n.startswith("results_summary-") and n.endswith(".csv")]) == 1
    assert extract_log.main(args + ["--overwrite"]) == 0
    assert open(edited).read() != "hand-edited\n"
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]


def test_cli_arguments(tmp_path):
    args = extract_log.parse_args(["some/output10.0"])
    assert (args.root, args.output_path) == ("some/output10.0", osp.join("output_csv", "output10.0"))
    assert extract_log.parse_args(["--save_patch", "x", "--output_path", "o"]).root == "x"
    with pytest.raises(SystemExit):
        extract_log.parse_args(["a", "--save_patch", "b"])
    with pytest.raises(SystemExit):
        extract_log.parse_args([])
    assert extract_log.main([str(tmp_path), "--output_path", str(tmp_path / "o")]) == 1  # no logs
    assert not osp.exists(tmp_path / "o")
    assert extract_log.main([str(tmp_path / "missing")]) == 2


# The real sweep through the scripts (tiny backbone) is tabulated in tests/test_sweep_e2e.py.
