"""extract_log.py with run provenance (``--provenance``, mixed commit / config warnings) and published numbers
(``--compare``, ``configs/published/base2new.csv``)."""
import csv
import json
import os
import os.path as osp
import statistics as st
import subprocess
import sys
import warnings

import pytest

from conftest import REPO

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import extract_log  # noqa: E402
import logtree as lt  # noqa: E402
from extract_log import LogWarning, extract  # noqa: E402

PUBLISHED = osp.join(REPO, "configs", "published", "base2new.csv")
DATASETS = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101", "fgvc_aircraft",
            "sun397", "dtd", "eurosat", "ucf101"]
CFG = "vit_b16_c2_ep20_batch4_4+4ctx"
COMMIT_A, COMMIT_B = "a" * 40, "b" * 40


def published_rows():
    """The data file's rows as text (first row per trainer and dataset is the one compared)."""
    with open(PUBLISHED) as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    first = {}
    for r in rows:
        first.setdefault((r["trainer"], r["dataset"]), r)
    return rows, first


def segment(log, seed, commit=COMMIT_A, dirty=False, lr=0.0025, wall=100.0, rss=900.0):
    return {"status": "finished", "log": log, "git": {"commit": commit, "dirty": dirty}, "wall_time_s": wall,
            "peak_memory_mb": {"cpu_rss": rss, "cuda_max_allocated": None},
            "config": {"SEED": seed, "OUTPUT_DIR": f"/somewhere/seed{seed}", "OPTIM": {"LR": lr, "MAX_EPOCH": 20}}}


def write_run(run_dir, text, seg):
    lt.write_log(run_dir, text)
    with open(osp.join(run_dir, "provenance.json"), "w") as f:
        json.dump({"format": 1, "segments": [seg]}, f)


def offsets(dataset_index, seed):
    """Our accuracy = published + offset: dataset 0 is 3 points off on base (beyond 2 std), the others within."""
    base = (3.0 if dataset_index == 0 else 0.2) + 0.1 * (seed - 2)
    new = -0.3 + 0.2 * (seed - 2)
    return base, new


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """PromptSRC test_base / test_new eval logs on the 11 datasets x 3 seeds, around the published values.

    Provenance: caltech101 seed 3 from another commit; oxford_pets seed 2 with another learning rate (new split);
    imagenet without provenance records."""
    root = str(tmp_path_factory.mktemp("runs") / "output")
    _, first = published_rows()
    ours = {}
    for i, dataset in enumerate(DATASETS):
        pub = first[("PromptSRC", dataset)]
        for seed in (1, 2, 3):
            d_base, d_new = offsets(i, seed)
            train_dir = lt.b2n_dir(root, "train_base", dataset, "PromptSRC", CFG, seed)
            for split, sub, value in (("test_base", "base", float(pub["base"]) + d_base),
                                      ("test_new", "new", float(pub["new"]) + d_new)):
                value = round(value, 2)
                ours[(dataset, sub, seed)] = value
                run_dir = lt.b2n_dir(root, split, dataset, "PromptSRC", CFG, seed)
                text = lt.eval_log(value, run_dir, train_dir, 20, trainer="PromptSRC", dataset=dataset,
                                   subsample=sub, decimals=2)
                if dataset == "imagenet":
                    lt.write_log(run_dir, text)
                    continue
                commit = COMMIT_B if (dataset, seed) == ("caltech101", 3) else COMMIT_A
                lr = 0.005 if (dataset, seed, sub) == ("oxford_pets", 2, "new") else 0.0025
                wall = 10.0 * seed + (sub == "new")
                write_run(run_dir, text, segment("log.txt", seed, commit=commit, lr=lr, wall=wall, rss=800.0 + seed))
    return {"root": root, "ours": ours}


def extract_with_warnings(root, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        long_df, summary = extract(root, **kw)
    return long_df, summary, [str(w.message) for w in caught if issubclass(w.category, LogWarning)]


def test_mixed_commits_and_configs_are_warned_by_name(tree):
    _, _, caught = extract_with_warnings(tree["root"])
    mixed = [w for w in caught if "different commits" in w]
    assert mixed == [f"PromptSRC/{CFG}, caltech101: the seeds come from different commits: "
                     f"{COMMIT_A[:10]} (seeds 1,2); {COMMIT_B[:10]} (seed 3)"]
    configs = [w for w in caught if "configs of the seeds differ" in w]
    assert configs == [f"PromptSRC/{CFG}, oxford_pets (new): the configs of the seeds differ in OPTIM.LR: "
                       "OPTIM.LR: 0.0025 (seeds 1,3); 0.005 (seed 2)"]  # SEED and OUTPUT_DIR are not compared


def test_tables_unchanged_without_options(tree):
    long_df, summary, _ = extract_with_warnings(tree["root"])
    assert list(long_df.columns) == extract_log.LONG_COLUMNS
    assert list(summary.columns) == extract_log.SUMMARY_COLUMNS


def test_provenance_columns(tree):
    long_df, summary, _ = extract_with_warnings(tree["root"], provenance=True)
    assert list(long_df.columns) == extract_log.LONG_COLUMNS + extract_log.PROVENANCE_COLUMNS
    run = long_df[(long_df.dataset == "caltech101") & (long_df.seed == 3) & (long_df.split == "new")].iloc[0]
    assert (run.commit, run.wall_time_s, run.peak_rss_mb) == (COMMIT_B, 31.0, 803.0)
    assert long_df[long_df.dataset == "imagenet"]["commit"].isna().all()
    row = summary[(summary.dataset == "caltech101")].iloc[0]
    # per seed: the base run (10 s x seed) plus the new run (10 s x seed + 1), averaged over seeds 1..3
    assert row.wall_time_s == pytest.approx(st.mean(20.0 * s + 1 for s in (1, 2, 3)))
    assert row.peak_rss_mb == 803.0 and row.commits == f"{COMMIT_A[:10]} {COMMIT_B[:10]}"
    text = extract_log.format_markdown(summary)
    assert "| commit" in text and "0:00:41" in text  # (21 + 41 + 61) / 3 s


def test_compare_with_published_numbers(tree):
    _, summary, _ = extract_with_warnings(tree["root"], compare=PUBLISHED)
    _, first = published_rows()
    ours = tree["ours"]
    for dataset in DATASETS:
        pub = first[("PromptSRC", dataset)]
        r = summary[summary.dataset == dataset].iloc[0]
        assert r.pub_source == pub["source"]
        flags = set()
        for sub in ("base", "new"):
            values = [ours[(dataset, sub, s)] for s in (1, 2, 3)]
            assert r[f"pub_{sub}"] == float(pub[sub])
            assert r[f"d_{sub}"] == pytest.approx(st.mean(values) - float(pub[sub]), abs=1e-9)
            if abs(st.mean(values) - float(pub[sub])) > 2 * st.pstdev(values):
                flags.add(sub)
        b, n = (st.mean(ours[(dataset, sub, s)] for s in (1, 2, 3)) for sub in ("base", "new"))
        assert r.d_hm == pytest.approx(2 * b * n / (b + n) - float(pub["hm"]), abs=1e-9)
        assert set(filter(None, r.pub_flag.split(","))) - {"hm"} == flags
    assert summary[summary.dataset == "imagenet"].iloc[0].pub_flag.startswith("base")  # 3 points off
    avg = summary[summary.dataset == "Average"].iloc[0]
    pub_avg = first[("PromptSRC", "Average")]
    mean_base = st.mean(st.mean(ours[(d, "base", s)] for s in (1, 2, 3)) for d in DATASETS)
    assert avg.d_base == pytest.approx(mean_base - float(pub_avg["base"]), abs=1e-9)
    assert ("base" in avg.pub_flag.split(",")) == (abs(avg.d_base) > 1.0)  # no seed std: the 1-point rule
    text = extract_log.format_markdown(summary)
    assert f"[1] {first[('PromptSRC', 'imagenet')]['source']}; [2] {pub_avg['source']}." in text


def test_compare_leaves_unpublished_and_partial_averages_blank(tmp_path):
    root = str(tmp_path / "output")
    for trainer in ("PromptOT", "IVLP"):  # Prompt-OT: no published numbers; IVLP: an Average only
        for sub, split in (("base", "test_base"), ("new", "test_new")):
            run_dir = lt.b2n_dir(root, split, "dtd", trainer, CFG, 1)
            lt.write_log(run_dir, lt.eval_log(70.0, run_dir, run_dir, 20, trainer=trainer, subsample=sub))
    _, summary, _ = extract_with_warnings(root, compare=PUBLISHED)
    assert summary["pub_base"].isna().all()  # IVLP's Average averages 1 dataset, not the published 11


def test_published_file_sources_and_harmonic_means():
    rows, _ = published_rows()
    assert len(rows) >= 60
    known_trainers = {"ZeroshotCLIP", "CoOp", "CoCoOp", "IVLP", "MaPLe", "PromptSRC", "ALIGN", "PromptOT", "SOTGLP"}
    for r in rows:
        assert r["source"].strip() and r["trainer"] in known_trainers
        assert r["dataset"] in DATASETS + ["Average"]

        def half_unit(text):  # half a unit of the last printed decimal
            return 0.5 * 10 ** -len(text.partition(".")[2])

        b, n, h = float(r["base"]), float(r["new"]), float(r["hm"])
        hm = 2 * b * n / (b + n)
        # rounding of the printed HM, plus how far the rounding of B and N can move 2BN/(B+N)
        tol = half_unit(r["hm"]) + 2 * n * n / (b + n) ** 2 * half_unit(r["base"]) \
            + 2 * b * b / (b + n) ** 2 * half_unit(r["new"])
        consistent = abs(hm - h) <= tol + 1e-9
        assert consistent == (not r["note"]), (r, hm)  # only the rows with a note are inconsistent, as printed
        if r["note"]:
            assert f"= {hm:.2f}" in r["note"]


def test_cli_compare_and_no_library_warnings(tree, tmp_path):
    for sub in ("base", "new"):  # zero-shot rows: no epoch at all (blank cells, formerly pandas' fillna warning)
        zs_dir = lt.b2n_dir(tree["root"], f"test_{sub}", "dtd", "ZeroshotCLIP", "vit_b16", 1)
        lines = lt.startup(zs_dir, "ZeroshotCLIP", "dtd", sub, 0) + ["Evaluate on the *test* set"]
        lines += lt.result_block(50.0)
        lt.write_log(zs_dir, "\n".join(lines) + "\n")
    proc = subprocess.run([sys.executable, "-W", "error", osp.join(REPO, "extract_log.py"), tree["root"],
                           "--output_path", str(tmp_path / "csv"), "--compare", "--provenance"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "FutureWarning" not in proc.stderr and "DeprecationWarning" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if not line.startswith("warning: PromptSRC/")] == []
    assert "published B / N / HM" in proc.stdout and "Sources: [1]" in proc.stdout
    import pandas as pd

    summary = pd.read_csv(tmp_path / "csv" / "results_summary.csv")
    assert {"pub_base", "d_hm", "pub_source", "commits", "wall_time_s"} <= set(summary.columns)
    zs = summary[(summary.trainer == "ZeroshotCLIP") & (summary.dataset == "dtd")].iloc[0]
    _, first = published_rows()
    assert zs.pub_base == float(first[("ZeroshotCLIP", "dtd")]["base"])
    assert zs.d_base == pytest.approx(50.0 - zs.pub_base)
    bad = tmp_path / "bad.csv"
    bad.write_text("trainer,dataset\nCoOp,dtd\n")
    proc = subprocess.run([sys.executable, osp.join(REPO, "extract_log.py"), tree["root"], "--output_path",
                           str(tmp_path / "csv2"), "--compare", str(bad)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        f"error: the published-numbers file {bad} lacks the column(s) base, new, hm, source"]
    assert not os.path.exists(tmp_path / "csv2")


def test_skipped_logs_say_what_happened_to_their_run(tmp_path):
    import socket

    root = str(tmp_path / "output")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs
    fates = {1: {"status": "running", "pid": gone.pid, "host": socket.gethostname(), "start_time": "t0"},
             2: {"status": "terminated", "end_time": "t1"}}
    for seed, seg in fates.items():
        run_dir = lt.b2n_dir(root, "train_base", "dtd", "PromptOT", CFG, seed)
        text = lt.train_log(80.0, run_dir, stop_after_epoch=3)  # no "Finish training"
        write_run(run_dir, text, dict(seg, log="log.txt"))
    _, _, caught = extract_with_warnings(root)
    assert any(w.endswith(f"provenance: the run died without a word (pid {gone.pid} on {socket.gethostname()}, "
                          "started t0)") for w in caught), caught
    assert any(w.endswith("provenance: the run was stopped by SIGTERM at t1") for w in caught), caught
