#!/usr/bin/env python
"""Tabulate Dassl result logs: Base / New / HM (base-to-new), accuracy (few-shot, cross-dataset, domain
generalisation) and FPR95 / AUROC (OOD), averaged over seeds.

Usage::

    python extract_log.py OUTPUT_ROOT [--output_path DIR] [--plot] [--overwrite] [--provenance] [--compare [CSV]]
    python extract_log.py --save_patch OUTPUT_ROOT --output_path DIR      # upstream extract_log_3.py form

From Python: ``long_df, summary_df = extract(root, provenance=False, compare=None)``.

Provenance: each run directory's ``provenance.json`` (written by ``train.py``) gives the commit, wall time and
peak memory of the run that wrote the log used (``--provenance`` adds them as columns) and its config; a warning
names every row whose seeds come from different commits, or whose runs of one split differ in config keys.
``--compare`` adds the published base-to-novel numbers of ``configs/published/base2new.csv`` (or CSV) beside ours.
A log skipped for want of a result is reported with what its run's record says (died, still running, terminated, ...).

Layouts recognised below OUTPUT_ROOT (anything in front of them, e.g. ``output10.0/``, becomes the ``exp`` column, so
several sweeps under one root stay apart):

=========================  ====================================================================================
protocol                   run directory
=========================  ====================================================================================
``base2new``               ``[base2new/]{train_base,test_base,test_new}/<dataset>/shots_<K>/<trainer>/<cfg>/seed<S>``
                           (any ``train_*`` directory, e.g. ALIGN's ``train_vis_2``, counts as a training run)
``xd`` / ``dg``            ``evaluation/<trainer>/<cfg>_<K>shots/<dataset>/seed<S>``; ``dg`` for imagenetv2,
                           imagenet_sketch, imagenet_a, imagenet_r; the ImageNet source run
                           ``imagenet/<trainer>/<cfg>_<K>shots/seed<S>`` is added as ``imagenet (source)``
``fewshot``                ``<dataset>/<trainer>/<cfg>_<K>shots/seed<S>`` (also CoOp's
                           ``.../<cfg>_<K>shots/<nctx..>/seed<S>`` and ``<dataset>/<trainer>/shots_<K>/seed<S>``);
                           a cfg named after its dataset (SOT-GLP's ``dtd_16shots``) becomes ``{dataset}`` so the
                           datasets form one method
``ood``                    ``evaluation/<trainer>/<name containing "ood">/seed<S>``, plus the OOD block
                           (``=> OOD result``) of any log, one row per OOD set
``eval`` / ``other``       any other ``evaluation/<trainer>/<name>/seed<S>`` / any other directory with a log
=========================  ====================================================================================

Logs: ``log.txt`` and Dassl's re-run logs ``log.txt-YYYY-mm-dd-HH-MM-SS`` (ordered by the time stamp in the name;
``log.txt`` is always the oldest). Per run directory and split the newest log with a complete result wins. Training
logs (epoch lines / ``Finish training`` / ``Finished training``) count only the last ``=> result`` block after the
end-of-training line; a training log without it is truncated and skipped with a warning, as is any log whose last
result block lacks a parsable ``* accuracy:`` line. The checkpoint epoch of a result is the last ``Loading weights
to ... (epoch = E)`` / ``Load ... (epoch=E)`` line before the block, else (training logs) the largest epoch seen in
``epoch [e/E]``, ``Checkpoint saved to .../model.pth.tar-N`` or ``Previous epoch: N`` lines.

Aggregation: Base comes from ``test_base`` when present, else from the final test of the training run; New from
``test_new``. Per dataset: mean and **population** standard deviation (``ddof=0``, as CoOp's ``parse_test_res.py``
``np.std``) over seeds, the number of seeds and the seeds missing relative to the other datasets of the same method.
HM = 2·B·N/(B+N) of the seed-averaged Base and New. The ``Average`` row is the mean Base and mean New over datasets
and the HM of those two (not the mean of per-dataset HMs); for xd / dg / few-shot it is the mean accuracy over the
target datasets (the source row is excluded).

Outputs (in ``--output_path``, default ``output_csv/<basename of OUTPUT_ROOT>``): ``results_long.csv`` (one row per
run directory and split; OOD runs add one row per OOD set), ``results_summary.csv`` (one row per
exp/protocol/trainer/cfg/shots/dataset plus ``Average`` rows), ``results_summary.md`` (the markdown printed to the
terminal) and with ``--plot`` ``results.png``. Files are written atomically (temporary file + rename). An existing
file is replaced only if this script wrote it and it is unchanged since (sha256 recorded in
``.extract_log_manifest.json`` in the output directory) or with ``--overwrite``; otherwise the new file gets a
``-YYYY-mm-dd-HH-MM-SS`` suffix and a warning is printed.
"""
import argparse
import hashlib
import io
import json
import math
import os
import os.path as osp
import re
import sys
import tempfile
import textwrap
import time
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import pandas as pd

from sweep.finished import (
    EPOCH_RE, LOG_NAME_RE, NotFinished, locate_result, result_items, to_percent, valid_accuracy,
)

__all__ = ["extract", "collect_runs", "summarize", "parse_log_text", "parse_run_path", "harmonic_mean",
           "format_markdown", "plot_summary", "write_outputs", "main", "LogWarning", "SkippedLog"]

# ----------------------------------------------------------------------------------------------------------------
# Constants

LONG_COLUMNS = [
    # the columns of the upstream extract_log_3.py, in its order
    "path", "file", "task_name", "novel", "dataset", "shots", "trainer", "cfg", "seed", "copy", "epoch",
    "accuracy", "error", "macro_f1", "batch_size",
    # project additions
    "exp", "protocol", "split", "kind", "max_epoch", "total", "correct", "fpr95", "auroc", "elapsed", "n_logs",
    "used",
]
GROUP_KEYS = ["exp", "protocol", "trainer", "cfg", "shots"]
SUMMARY_COLUMNS = GROUP_KEYS + [
    "dataset", "n_seeds", "seeds", "missing_seeds",
    "base", "base_std", "base_n", "base_epoch", "base_from",
    "new", "new_std", "new_n", "new_epoch",
    "hm",
    "acc", "acc_std", "acc_n", "acc_epoch",
    "fpr95", "fpr95_std", "auroc", "auroc_std",
    "n_datasets",
]
# --provenance: from each run directory's provenance.json (written by train.py), the segment that wrote the log used
PROVENANCE_FILE = "provenance.json"
PROVENANCE_COLUMNS = ["commit", "dirty", "wall_time_s", "peak_rss_mb", "peak_cuda_mb"]
SUMMARY_PROVENANCE_COLUMNS = ["commits", "wall_time_s", "peak_rss_mb", "peak_cuda_mb"]
NOT_COMPARED = {"SEED", "OUTPUT_DIR", "RESUME", "DATASET.ROOT"}  # config keys that may differ between seeds
# --compare: published base-to-novel numbers (Base / New / HM, with their sources)
PUBLISHED_B2N = osp.join(osp.dirname(osp.abspath(__file__)), "configs", "published", "base2new.csv")
COMPARE_COLUMNS = ["pub_base", "pub_new", "pub_hm", "d_base", "d_new", "d_hm", "pub_flag", "pub_source"]
OUTPUT_NAMES = {"long": "results_long.csv", "summary": "results_summary.csv", "markdown": "results_summary.md",
                "plot": "results.png"}
MANIFEST_NAME = ".extract_log_manifest.json"

PROTOCOL_ORDER = ["base2new", "fewshot", "xd", "dg", "ood", "eval", "other"]
DG_DATASETS = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
DATASET_ORDER = [  # published-table order, then the DG targets and OOD sets
    "imagenet", "imagenet (source)", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
    "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101", *DG_DATASETS,
    "iNaturalist", "SUN", "Places", "Textures", "average",
]
AVERAGE = "Average"
PER_DATASET_CFG = "{dataset}"
SOURCE_SUFFIX = " (source)"
SPLIT_PREFIX = {"base": "base", "new": "new", "all": "acc", "id": "acc"}  # "ood" rows feed fpr95/auroc

SEED_RE = re.compile(r"^seed(\d+)$")
SHOTS_DIR_RE = re.compile(r"^shots_(\d+)$")
CFG_SHOTS_RE = re.compile(r"^(.*)_(\d+)shots$")
B2N_SPLIT_RE = re.compile(r"^(train|test)_\w+$")
BATCH_RE = re.compile(r"batch(\d+)")

COUNT_RE = re.compile(r"^\d[\d,]*$")
LOAD_RES = (
    re.compile(r'^Loading weights to \S+ from ".*" \(epoch = (\d+)\)'),  # CoOp-family load_model
    re.compile(r"^Load .* to \S+ \(epoch=(\d+)"),  # Dassl base load_model
)
TRAIN_EPOCH_RES = (
    re.compile(r'^Checkpoint saved to .*model\.pth\.tar-(\d+)"?$'),
    re.compile(r"^Previous epoch: (\d+)$"),
)
TARFILE_RE = re.compile(r"model\.pth\.tar-(\d+)")
ELAPSED_RE = re.compile(r"^Elapsed: (.+)$")
SUBSAMPLE_RES = (re.compile(r"^SUBSAMPLE (BASE|NEW|ALL) CLASSES!"), re.compile(r"^SUBSAMPLE_CLASSES: (\w+)$"))
OOD_HEADER = "=> OOD result"
OOD_ITEM_RE = re.compile(r"^\* (.+?): FPR95 ([-+\d.eE]+)% AUROC ([-+\d.eE]+)%$")


class LogWarning(UserWarning):
    """A log or a table cell that could not be used (the message names the file or the method)."""


class SkippedLog(Exception):
    """Raised by the log parser when a log holds no usable result; the message says why."""


def warn(message: str) -> None:
    """Emit a :class:`LogWarning`."""
    warnings.warn(message, LogWarning, stacklevel=2)


# ----------------------------------------------------------------------------------------------------------------
# Log parsing

@dataclass
class LogResult:
    """The final test result of one Dassl log."""

    kind: str  # "train" or "eval"
    accuracy: float
    error: Optional[float] = None
    macro_f1: Optional[float] = None
    total: Optional[int] = None
    correct: Optional[int] = None
    epoch: Optional[int] = None
    max_epoch: Optional[int] = None
    elapsed: Optional[str] = None
    subsample: Optional[str] = None
    ood: List[Tuple[str, float, float]] = field(default_factory=list)  # (OOD set, FPR95, AUROC)


def _to_percent(value: Optional[str]) -> Optional[float]:
    """``"82.5%"`` -> 82.5; None when absent or malformed."""
    return to_percent(value)


def _to_count(value: Optional[str]) -> Optional[int]:
    """``"1,881"`` -> 1881; None when absent or malformed."""
    if value is None or not COUNT_RE.match(value.strip()):
        return None
    return int(value.strip().replace(",", ""))


def parse_result_block(lines: List[str], header: int) -> Optional[Dict]:
    """Parse the ``* key: value`` lines following ``lines[header] == '=> result'``.

    Returns a dict (accuracy, error, macro_f1, total, correct) or None when the block has no valid accuracy.
    """
    items = result_items(lines, header)
    accuracy = valid_accuracy(items)
    if accuracy is None:
        return None
    return {"accuracy": accuracy, "error": _to_percent(items.get("error")),
            "macro_f1": _to_percent(items.get("macro_f1")),
            "total": _to_count(items.get("total")), "correct": _to_count(items.get("correct"))}


def parse_ood_block(lines: List[str], header: int) -> List[Tuple[str, float, float]]:
    """Parse ``* <set>: FPR95 f% AUROC a%`` lines following an ``=> OOD result`` header."""
    rows = []
    for line in lines[header + 1:]:
        m = OOD_ITEM_RE.match(line)
        if not m:
            break
        rows.append((m.group(1), float(m.group(2)), float(m.group(3))))
    return rows


def _last_match(patterns, lines: List[str]) -> Optional[str]:
    """First group of the last line (in order) that matches any of ``patterns``."""
    for line in reversed(lines):
        for pattern in patterns:
            m = pattern.match(line)
            if m:
                return m.group(1)
    return None


def _trained_epoch(lines: List[str]) -> Optional[int]:
    """Largest epoch seen in training lines, checkpoint-saved lines or a resume's ``Previous epoch``."""
    epochs = [int(m.group(1)) for m in map(EPOCH_RE.match, lines) if m]
    for pattern in TRAIN_EPOCH_RES:
        epochs += [int(m.group(1)) for m in map(pattern.match, lines) if m]
    return max(epochs) if epochs else None


def result_epoch(lines: List[str], start: int, header: int, kind: str) -> Optional[int]:
    """Checkpoint epoch of the result block at ``header``; ``start`` is the end-of-training line (or 0)."""
    loaded = _last_match(LOAD_RES, lines[start:header])
    if loaded is not None:
        return int(loaded)
    if kind == "train":
        return _trained_epoch(lines[:start])
    tarfile = [m.group(1) for m in map(TARFILE_RE.search, lines[:header]) if m]
    return int(tarfile[-1]) if tarfile else None


def parse_log_text(text: str) -> LogResult:
    """Return the final result of a Dassl log; raise :class:`SkippedLog` when there is none.

    Whether a log is finished is decided by :func:`sweep.finished.locate_result`, the rule the scripts use.
    """
    lines = [line.strip() for line in text.splitlines()]
    epoch_lines = [m for m in map(EPOCH_RE.match, lines) if m]
    try:
        is_train, start, header = locate_result(lines)
    except NotFinished as e:
        raise SkippedLog(str(e)) from None
    block = parse_result_block(lines, header)
    kind = "train" if is_train else "eval"
    ood_headers = [i for i in range(start, len(lines)) if lines[i].startswith(OOD_HEADER)]
    return LogResult(
        kind=kind, **block,
        epoch=result_epoch(lines, start, header, kind),
        max_epoch=int(epoch_lines[-1].group(2)) if epoch_lines else None,
        elapsed=_last_match([ELAPSED_RE], lines[header:]),
        subsample=(_last_match(SUBSAMPLE_RES, lines) or "").lower() or None,
        ood=parse_ood_block(lines, ood_headers[-1]) if ood_headers else [],
    )


def log_sort_key(name: str) -> Tuple[int, str]:
    """Oldest first: ``log.txt`` (first run), then ``log.txt-<time stamp>`` by time stamp."""
    stamp = LOG_NAME_RE.match(name).group(1)
    return (0, "") if stamp is None else (1, stamp)


def find_logs(filenames: List[str]) -> List[str]:
    """Dassl log names among ``filenames``, oldest first."""
    return sorted((n for n in filenames if LOG_NAME_RE.match(n)), key=log_sort_key)


# ----------------------------------------------------------------------------------------------------------------
# Path parsing

def _info(parts, prefix_len, protocol, dataset, shots, trainer, cfg, task_name="", novel="", split="all") -> Dict:
    """Run description from a matched layout; ``parts[:prefix_len]`` becomes ``exp``."""
    exp_parts = list(parts[:prefix_len])
    if protocol == "base2new" and exp_parts and exp_parts[-1] == "base2new":
        exp_parts.pop()
    seed = SEED_RE.match(parts[-1]) if parts else None
    return {"exp": "/".join(exp_parts), "protocol": protocol, "task_name": task_name, "novel": novel,
            "dataset": dataset, "shots": int(shots) if shots is not None else None, "trainer": trainer,
            "cfg": cfg, "seed": int(seed.group(1)) if seed else None, "path_split": split}


def _match_base2new(p):
    if len(p) >= 6 and B2N_SPLIT_RE.match(p[-6]) and SHOTS_DIR_RE.match(p[-4]):
        split = {"test_new": "new"}.get(p[-6], "base")
        task = p[-7] if len(p) >= 7 else "base2new"
        return _info(p, len(p) - 6, "base2new", p[-5], SHOTS_DIR_RE.match(p[-4]).group(1), p[-3], p[-2],
                     task_name=task, novel=p[-6], split=split)
    return None


def _match_evaluation(p):
    if len(p) >= 5 and p[-5] == "evaluation" and CFG_SHOTS_RE.match(p[-3]):
        cfg, shots = CFG_SHOTS_RE.match(p[-3]).groups()
        protocol = "dg" if p[-2] in DG_DATASETS else "xd"
        return _info(p, len(p) - 5, protocol, p[-2], shots, p[-4], cfg, task_name="evaluation")
    if len(p) >= 4 and p[-4] == "evaluation":
        protocol = "ood" if "ood" in p[-2].lower() else "eval"
        dataset = "imagenet" if "imagenet" in p[-2].lower() else p[-2]
        return _info(p, len(p) - 4, protocol, dataset, None, p[-3], p[-2], task_name="evaluation",
                     split="id" if protocol == "ood" else "all")
    return None


def shared_cfg(cfg: str, dataset: str) -> str:
    """Per-dataset config names (SOT-GLP's ``<dataset>_16shots``) -> ``{dataset}``, so datasets share a method."""
    if cfg == dataset or cfg.startswith(dataset + "_"):
        return PER_DATASET_CFG + cfg[len(dataset):]
    return cfg


def _match_fewshot(p):
    if len(p) >= 4 and CFG_SHOTS_RE.match(p[-2]):  # <dataset>/<trainer>/<cfg>_<K>shots/seed<S>
        cfg, shots = CFG_SHOTS_RE.match(p[-2]).groups()
        return _info(p, len(p) - 4, "fewshot", p[-4], shots, p[-3], shared_cfg(cfg, p[-4]), task_name="fewshot")
    if len(p) >= 5 and CFG_SHOTS_RE.match(p[-3]):  # CoOp: .../<cfg>_<K>shots/nctx16_cscFalse_ctpend/seed<S>
        cfg, shots = CFG_SHOTS_RE.match(p[-3]).groups()
        return _info(p, len(p) - 5, "fewshot", p[-5], shots, p[-4], f"{cfg}/{p[-2]}", task_name="fewshot")
    if len(p) >= 4 and SHOTS_DIR_RE.match(p[-2]):  # ALIGN authors' MaPLe: <dataset>/<trainer>/shots_<K>/seed<S>
        return _info(p, len(p) - 4, "fewshot", p[-4], SHOTS_DIR_RE.match(p[-2]).group(1), p[-3], "",
                     task_name="fewshot")
    return None


def parse_run_path(parts: List[str]) -> Dict:
    """Describe a run directory from its path components relative to the output root."""
    parts = list(parts)
    if parts and SEED_RE.match(parts[-1]):
        for matcher in (_match_base2new, _match_evaluation, _match_fewshot):
            info = matcher(parts)
            if info is not None:
                return info
    cfg_parts = parts[:-1] if parts and SEED_RE.match(parts[-1]) else parts
    return _info(parts, 0, "other", "", None, "", "/".join(cfg_parts) or ".", task_name="other")


# ----------------------------------------------------------------------------------------------------------------
# Walking the tree

def iter_run_dirs(root: str):
    """Yield ``(dirpath, subdirs, log names oldest first)`` for every directory holding a Dassl log."""
    for dirpath, dirnames, filenames in os.walk(root):
        subdirs = sorted(dirnames)
        dirnames[:] = [d for d in subdirs if not d.startswith(".") and d != "tensorboard"]
        logs = find_logs(filenames)
        if logs:
            yield dirpath, subdirs, logs


def resolve_split(info: Dict, result: LogResult) -> str:
    """Split a result counts for: the path's, except that a base2new log saying ``SUBSAMPLE NEW`` is New."""
    if info["protocol"] == "base2new" and result.subsample in ("base", "new"):
        return result.subsample
    return info["path_split"]


def run_fate(segment: Optional[Dict]) -> str:
    """What the provenance record says about the run that wrote a log without a result ("" without a record)."""
    if not segment:
        return ""
    from dassl.utils.provenance import segment_state  # imports torch: only for logs without a result

    state = segment_state(segment)
    where = f"pid {segment.get('pid')} on {segment.get('host')}, started {segment.get('start_time')}"
    fates = {"died": f"the run died without a word ({where})", "running": f"the run is still going ({where})",
             "running?": f"the run ran on another host and never finished there ({where})",
             "terminated": f"the run was stopped by SIGTERM at {segment.get('end_time')}",
             "interrupted": f"the run was interrupted (Ctrl-C) at {segment.get('end_time')}",
             "failed": f"the run failed: {segment.get('error')}"}
    return f"; provenance: {fates.get(state, state)}"


def read_logs(dirpath: str, logs: List[str], info: Dict,
              segments: Optional[Dict[str, Dict]] = None) -> Dict[str, Tuple[str, LogResult]]:
    """Parse every log of a run directory; per split keep the newest usable one (warn about unusable ones, with
    what the run's provenance record says about them)."""
    winners = {}
    for name in logs:  # oldest first, so later ones replace earlier ones
        path = osp.join(dirpath, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                result = parse_log_text(f.read())
        except (OSError, SkippedLog) as exc:
            warn(f"skipping {path}: {exc}{run_fate((segments or {}).get(name))}")
            continue
        winners[resolve_split(info, result)] = (name, result)
    return winners


def _copy_flag(cfg: str, subdirs: List[str]):
    """Upstream extract_log_3.py's ``copy`` column (kept for column compatibility)."""
    return cfg[-6:] if subdirs == [".ipynb_checkpoints"] else False


def run_rows(dirpath: str, subdirs: List[str], logs: List[str], info: Dict) -> List[Dict]:
    """Long-table rows of one run directory: one per split, plus one per OOD set."""
    rows = []
    batch = BATCH_RE.search(info["cfg"])
    segments = read_provenance(dirpath)
    for split, (name, res) in read_logs(dirpath, logs, info, segments).items():
        base = {k: v for k, v in info.items() if k != "path_split"}
        base.update(path=dirpath, file=name, copy=_copy_flag(info["cfg"], subdirs), epoch=res.epoch,
                    batch_size=int(batch.group(1)) if batch else None, kind=res.kind, max_epoch=res.max_epoch,
                    elapsed=res.elapsed, n_logs=len(logs), **provenance_fields(segments.get(name)))
        rows.append({**base, "split": split, "accuracy": res.accuracy, "error": res.error,
                     "macro_f1": res.macro_f1, "total": res.total, "correct": res.correct})
        cfg = info["cfg"].replace(PER_DATASET_CFG, info["dataset"])
        for ood_set, fpr95, auroc in res.ood:
            rows.append({**base, "protocol": "ood", "cfg": cfg, "dataset": ood_set, "split": "ood",
                         "fpr95": fpr95, "auroc": auroc})
    return rows


def read_provenance(dirpath: str) -> Dict[str, Dict]:
    """Log file name -> the (last) segment of ``provenance.json`` that wrote it; empty without a readable record."""
    try:
        with open(osp.join(dirpath, PROVENANCE_FILE)) as f:
            segments = json.load(f).get("segments", [])
    except (OSError, ValueError, AttributeError):
        return {}
    return {seg["log"]: seg for seg in segments if isinstance(seg, dict) and seg.get("log")}


def flatten(node, prefix="") -> Dict[str, str]:
    """``{"OPTIM": {"LR": 0.1}}`` -> ``{"OPTIM.LR": "0.1"}`` (values as JSON text, comparable)."""
    if not isinstance(node, dict):
        return {prefix: json.dumps(node)}
    out = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return out


def provenance_fields(segment: Optional[Dict]) -> Dict:
    """The long-table provenance columns of one run (None without a record) and its flattened config."""
    if not segment:
        return {}
    git, memory = segment.get("git") or {}, segment.get("peak_memory_mb") or {}
    return {"commit": git.get("commit"), "dirty": git.get("dirty"), "wall_time_s": segment.get("wall_time_s"),
            "peak_rss_mb": memory.get("cpu_rss"), "peak_cuda_mb": memory.get("cuda_max_allocated"),
            "run_config": flatten(segment.get("config") or {})}


def _commit_label(commit, dirty) -> str:
    return f"{commit[:10]}{'+dirty' if dirty else ''}"


def _by_value(values: Dict[int, str]) -> str:
    """``{1: "a", 2: "a", 3: "b"}`` -> ``"a (seeds 1,2); b (seed 3)"``."""
    groups: Dict[str, List[int]] = {}
    for seed, value in sorted(values.items()):
        groups.setdefault(value, []).append(seed)
    return "; ".join(f"{v} (seed{'s' if len(seeds) > 1 else ''} {_join(seeds)})" for v, seeds in groups.items())


def warn_mixed_runs(long_df: pd.DataFrame) -> None:
    """Warn when the seeds of one table row come from different commits, or (per split) from different configs.

    Only runs with a provenance record take part; keys that name places or seeds (:data:`NOT_COMPARED`) are not
    compared. The message names the row and, per differing key, which seeds had which value.
    """
    used = long_df[long_df["used"] & long_df["commit"].notna()]
    for key, rows in used.groupby(GROUP_KEYS + ["dataset"], dropna=False, sort=False):
        label = "/".join(v for v in (key[0], key[2], key[3]) if isinstance(v, str) and v) + f", {key[-1]}"
        commits = {int(r.seed): _commit_label(r.commit, r.dirty) for r in rows.itertuples() if not pd.isna(r.seed)}
        if len(set(commits.values())) > 1:
            warn(f"{label}: the seeds come from different commits: {_by_value(commits)}")
        for split, runs in rows.groupby("split", sort=False):
            configs = {int(r.seed): r.run_config for r in runs.itertuples()
                       if isinstance(r.run_config, dict) and not pd.isna(r.seed)}
            keys = sorted({k for c in configs.values() for k in c} - NOT_COMPARED)
            differ = [k for k in keys if len({c.get(k, "(absent)") for c in configs.values()}) > 1]
            if differ:
                details = "; ".join(f"{k}: {_by_value({s: c.get(k, '(absent)') for s, c in configs.items()})}"
                                    for k in differ[:5])
                more = f" (and {len(differ) - 5} more keys)" if len(differ) > 5 else ""
                warn(f"{label} ({split}): the configs of the seeds differ in {', '.join(differ[:5])}{more}: "
                     f"{details}")


def mark_used(long_df: pd.DataFrame) -> pd.DataFrame:
    """Flag the row each (method, dataset, seed, split) takes its value from: ``test_*`` runs before training runs."""
    df = long_df.copy()
    df["_rank"] = (~df["novel"].fillna("").str.startswith("test_")).astype(int)
    df = df.sort_values("_rank", kind="stable")
    df["used"] = ~df.duplicated(GROUP_KEYS + ["dataset", "seed", "split"], keep="first")
    return df.sort_index().drop(columns="_rank")


def collect_runs(root: str) -> pd.DataFrame:
    """The long table: one row per run directory and split (OOD: per OOD set), in :data:`LONG_COLUMNS` order."""
    rows = []
    for dirpath, subdirs, logs in iter_run_dirs(root):
        rel = osp.relpath(dirpath, root)
        parts = [] if rel == "." else rel.split(os.sep)
        rows += run_rows(dirpath, subdirs, logs, parse_run_path(parts))
    df = pd.DataFrame(rows, columns=[c for c in LONG_COLUMNS if c != "used"] + PROVENANCE_COLUMNS + ["run_config"])
    df = mark_used(df) if len(df) else df.assign(used=pd.Series(dtype=bool))
    for col in ("shots", "seed", "epoch", "max_epoch", "total", "correct", "batch_size", "n_logs"):
        df[col] = df[col].astype("Int64")
    for col in ("accuracy", "error", "macro_f1", "fpr95", "auroc", "wall_time_s", "peak_rss_mb", "peak_cuda_mb"):
        df[col] = df[col].astype(float)
    df["dirty"] = df["dirty"].astype("boolean")
    return sort_table(df[LONG_COLUMNS + PROVENANCE_COLUMNS + ["run_config"]], ["seed", "split", "file"])


# ----------------------------------------------------------------------------------------------------------------
# Summary

def harmonic_mean(base: float, new: float) -> float:
    """HM = 2·B·N/(B+N); NaN when either is missing."""
    if base is None or new is None or pd.isna(base) or pd.isna(new) or base + new == 0:
        return math.nan
    return 2.0 * base * new / (base + new)


def order_key(value, order: List[str]) -> Tuple[int, str]:
    """Sort key: position in ``order``, unknown values after it alphabetically, ``Average`` last."""
    if value == AVERAGE:
        return (2, "")
    return (0, f"{order.index(value):04d}") if value in order else (1, str(value))


def _rank(values: pd.Series, order: List[str]) -> pd.Series:
    return values.map(lambda v: order_key(v, order))


def sort_table(df: pd.DataFrame, extra: List[str]) -> pd.DataFrame:
    """Order rows by exp, protocol (canonical order), trainer, cfg, shots, dataset (table order), ``extra``."""
    if df.empty:
        return df.reset_index(drop=True)
    keys = {"protocol": lambda s: _rank(s, PROTOCOL_ORDER), "dataset": lambda s: _rank(s, DATASET_ORDER)}
    by = GROUP_KEYS + ["dataset"] + extra
    return df.sort_values(by, key=lambda s: keys.get(s.name, lambda x: x)(s), na_position="first",
                          kind="stable").reset_index(drop=True)


def add_source_rows(used: pd.DataFrame) -> pd.DataFrame:
    """Copy the ImageNet source run of every xd / dg method into that protocol as ``imagenet (source)``."""
    source = used[(used["protocol"] == "fewshot") & (used["dataset"] == "imagenet")]
    source = source.assign(cfg=source["cfg"].str.replace(PER_DATASET_CFG, "imagenet", regex=False))
    copies = []
    for protocol in ("xd", "dg"):
        targets = used.loc[used["protocol"] == protocol, ["exp", "trainer", "cfg", "shots"]].drop_duplicates()
        rows = source.merge(targets, on=["exp", "trainer", "cfg", "shots"])
        if len(rows):
            copies.append(rows.assign(protocol=protocol, dataset="imagenet" + SOURCE_SUFFIX))
    return pd.concat([used] + copies, ignore_index=True) if copies else used


def _join(values) -> str:
    """``[3, 1, 2]`` -> ``"1,2,3"`` (unique, sorted, missing dropped)."""
    return ",".join(str(v) for v in sorted({int(v) for v in values if not pd.isna(v)}))


def split_stats(prefix: str, rows: pd.DataFrame) -> Dict:
    """Mean, population std, count and epochs of one split of one dataset."""
    if prefix == "ood":
        return {"fpr95": rows["fpr95"].mean(), "fpr95_std": rows["fpr95"].std(ddof=0),
                "auroc": rows["auroc"].mean(), "auroc_std": rows["auroc"].std(ddof=0)}
    acc = rows["accuracy"]
    stats = {prefix: acc.mean(), f"{prefix}_std": acc.std(ddof=0), f"{prefix}_n": int(acc.count()),
             f"{prefix}_epoch": _join(rows["epoch"])}
    if prefix == "base":
        stats["base_from"] = ",".join(sorted(set(rows["novel"].fillna(""))))
    return stats


def _missing(row: Dict, seeds_by_split: Dict[str, set], expected: set) -> str:
    """Seeds present elsewhere in the method but absent here, e.g. ``"base:2 new:2,3"`` or ``"2"``."""
    needed = ["base", "new"] if row["protocol"] == "base2new" else list(seeds_by_split) or ["all"]
    parts = []
    for split in needed:
        missing = _join(expected - seeds_by_split.get(split, set()))
        if missing:
            parts.append(f"{split}:{missing}" if row["protocol"] == "base2new" else missing)
    return " ".join(dict.fromkeys(parts))


def dataset_rows(used: pd.DataFrame) -> List[Dict]:
    """One summary row per method and dataset."""
    rows = []
    for key, method in used.groupby(GROUP_KEYS, dropna=False, sort=False):
        expected = set(method["seed"].dropna().astype(int))
        for dataset, runs in method.groupby("dataset", sort=False):
            row = dict(zip(GROUP_KEYS, key), dataset=dataset)
            seeds_by_split = {}
            for split, split_runs in runs.groupby("split", sort=False):
                row.update(split_stats(SPLIT_PREFIX.get(split, "ood"), split_runs))
                seeds_by_split[split] = set(split_runs["seed"].dropna().astype(int))
            row.update(n_seeds=runs["seed"].nunique(), seeds=_join(runs["seed"]),
                       missing_seeds=_missing(row, seeds_by_split, expected),
                       hm=harmonic_mean(row.get("base"), row.get("new")))
            rows.append(row)
    return rows


def average_row(method: pd.DataFrame) -> Optional[Dict]:
    """The ``Average`` row of one method (None for OOD / other protocols)."""
    first = method.iloc[0]
    row = {k: first[k] for k in GROUP_KEYS}
    row["dataset"] = AVERAGE
    if first["protocol"] == "base2new":
        base, new = method.dropna(subset=["base"]), method.dropna(subset=["new"])
        row.update(base=base["base"].mean(), new=new["new"].mean(), n_datasets=len(method))
        if set(base["dataset"]) == set(new["dataset"]):
            row["hm"] = harmonic_mean(row["base"], row["new"])
        else:
            label = "/".join(str(first[k]) for k in ("exp", "trainer", "cfg") if first[k])
            warn(f"{label}: no Average HM, Base and New cover different datasets "
                 f"(base: {len(base)}, new: {len(new)})")
        return row
    if first["protocol"] in ("xd", "dg", "fewshot"):
        targets = method[~method["dataset"].str.endswith(SOURCE_SUFFIX)].dropna(subset=["acc"])
        row.update(acc=targets["acc"].mean(), n_datasets=len(targets))
        return row
    return None


def summarize(long_df: pd.DataFrame) -> pd.DataFrame:
    """Summary table (:data:`SUMMARY_COLUMNS`) from the used rows of the long table, with ``Average`` rows."""
    used = add_source_rows(long_df[long_df["used"]])
    summary = pd.DataFrame(dataset_rows(used), columns=SUMMARY_COLUMNS)
    averages = [average_row(method) for _, method in summary.groupby(GROUP_KEYS, dropna=False, sort=False)]
    averages = [row for row in averages if row is not None]
    if averages:
        summary = pd.concat([summary, pd.DataFrame(averages, columns=SUMMARY_COLUMNS)], ignore_index=True)
    for col in ("shots", "n_seeds", "base_n", "new_n", "acc_n", "n_datasets"):
        summary[col] = summary[col].astype("Int64")
    return sort_table(summary[SUMMARY_COLUMNS], [])


def summary_provenance(long_df: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """:data:`SUMMARY_PROVENANCE_COLUMNS` per dataset row: the commits of its runs, the wall time per seed (sum over
    every run of the row: training and evaluation) averaged over seeds, the largest peak memory."""
    runs = long_df.drop_duplicates(["path", "file"])
    values = {}
    for key, rows in runs.groupby(GROUP_KEYS + ["dataset"], dropna=False, sort=False):
        commits = sorted({_commit_label(r.commit, r.dirty) for r in rows.itertuples() if isinstance(r.commit, str)})
        per_seed = rows.groupby("seed")["wall_time_s"].sum(min_count=1)
        values[key] = {"commits": " ".join(commits), "wall_time_s": per_seed.mean(),
                       "peak_rss_mb": rows["peak_rss_mb"].max(), "peak_cuda_mb": rows["peak_cuda_mb"].max()}
    empty = dict.fromkeys(SUMMARY_PROVENANCE_COLUMNS)
    keys = summary[GROUP_KEYS + ["dataset"]].itertuples(index=False)
    extra = pd.DataFrame([values.get(tuple(k), empty) for k in keys], columns=SUMMARY_PROVENANCE_COLUMNS,
                         index=summary.index)
    return pd.concat([summary, extra], axis=1)


def extract(root: str, provenance: bool = False, compare: Optional[str] = None) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Walk ``root`` and return ``(long_df, summary_df)``; problems are reported as :class:`LogWarning`.

    ``provenance``: add the :data:`PROVENANCE_COLUMNS` (long) / :data:`SUMMARY_PROVENANCE_COLUMNS` (summary).
    ``compare``: a published-numbers CSV (:data:`PUBLISHED_B2N`); adds :data:`COMPARE_COLUMNS` to the summary.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f"output root not found: {root}")
    published = read_published(compare) if compare else None  # a bad file stops before the walk
    long_df = collect_runs(root)
    warn_mixed_runs(long_df)
    long_df = long_df[LONG_COLUMNS + (PROVENANCE_COLUMNS if provenance else [])]
    summary = summarize(long_df)
    if provenance:
        summary = summary_provenance(long_df, summary)
    if compare:
        summary = compare_published(summary, published)
    return long_df, summary


# ----------------------------------------------------------------------------------------------------------------
# Published numbers

def read_published(path: str) -> pd.DataFrame:
    """The published-numbers CSV: one row per (trainer, dataset), the first one where the file has several."""
    try:
        table = pd.read_csv(path, comment="#", dtype={"trainer": str, "dataset": str, "source": str})
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read the published-numbers file {path}: {e}") from e
    missing = [c for c in ("trainer", "dataset", "base", "new", "hm", "source") if c not in table.columns]
    if missing:
        raise ValueError(f"the published-numbers file {path} lacks the column(s) {', '.join(missing)}")
    return table.drop_duplicates(["trainer", "dataset"], keep="first")


def _known(pick, *values):
    """``pick`` (min / max) of the values that are not missing; NaN when all are."""
    known = [float(v) for v in values if not pd.isna(v)]
    return pick(known) if known else math.nan


def _off(diff: float, std: float, n) -> bool:
    """A difference is marked when larger than twice our seed std, or than 1 point with one seed (or none known)."""
    if pd.isna(diff):
        return False
    if n is None or pd.isna(n) or n < 2 or pd.isna(std):
        return abs(diff) > 1.0
    return abs(diff) > 2 * std


def compare_published(summary: pd.DataFrame, published: pd.DataFrame) -> pd.DataFrame:
    """Add the published Base / New / HM of the same trainer and dataset, our value minus it, and the marks.

    Base-to-novel rows only. ``Average`` rows are compared only when they average 11 datasets (the published
    averages cover the 11 CoOp datasets); they have no seed std, so the 1-point rule applies. HM is marked with
    the larger of the Base and New stds and the smaller seed count.
    """
    pub = published.set_index(["trainer", "dataset"])
    rows = []
    for _, r in summary.iterrows():
        out = dict.fromkeys(COMPARE_COLUMNS)
        key = (r["trainer"], r["dataset"])
        comparable = r["protocol"] == "base2new" and key in pub.index and (
            r["dataset"] != AVERAGE or r["n_datasets"] == 11)
        if comparable:
            p = pub.loc[key]
            out.update(pub_base=float(p["base"]), pub_new=float(p["new"]), pub_hm=float(p["hm"]),
                       pub_source=p["source"])
            marks = []
            for col, std, n in (("base", r["base_std"], r["base_n"]), ("new", r["new_std"], r["new_n"]),
                                ("hm", _known(max, r["base_std"], r["new_std"]), _known(min, r["base_n"], r["new_n"]))):
                diff = r[col] - out[f"pub_{col}"]
                out[f"d_{col}"] = diff
                if _off(diff, std, None if r["dataset"] == AVERAGE else n):
                    marks.append(col)
            out["pub_flag"] = ",".join(marks)
        rows.append(out)
    return pd.concat([summary, pd.DataFrame(rows, columns=COMPARE_COLUMNS, index=summary.index)], axis=1)


# ----------------------------------------------------------------------------------------------------------------
# Presentation

def method_label(row) -> str:
    """``exp/trainer/cfg`` (+ ``K-shot`` for few-shot), without empty parts."""
    label = "/".join(str(row[k]) for k in ("exp", "trainer", "cfg") if isinstance(row[k], str) and row[k])
    if row["protocol"] == "fewshot" and not pd.isna(row["shots"]):
        label += f" ({row['shots']}-shot)"
    return label or "."


def _fmt(mean, std=None, n=None) -> str:
    """``82.43 ± 0.25``; no ± for a single seed; blank when the mean is missing."""
    if pd.isna(mean):
        return ""
    if std is None or pd.isna(std) or (n is not None and not pd.isna(n) and n < 2):
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {std:.2f}"


def _seeds_cell(row) -> str:
    """Seeds found, or for an Average row the number of datasets averaged."""
    if row["dataset"] == AVERAGE:
        return f"{row['n_datasets']} dataset" + ("s" if row["n_datasets"] != 1 else "")
    return str(row["n_seeds"])


MARKDOWN_LAYOUTS = {
    "base2new": lambda r: {"Base": _fmt(r["base"], r["base_std"], r["base_n"]),
                           "New": _fmt(r["new"], r["new_std"], r["new_n"]),
                           "HM": _fmt(r["hm"]), "epoch (base/new)": f"{_text(r['base_epoch'])}/{_text(r['new_epoch'])}"
                           if r["dataset"] != AVERAGE else ""},
    "ood": lambda r: {"FPR95": _fmt(r["fpr95"], r["fpr95_std"], r["n_seeds"]),
                      "AUROC": _fmt(r["auroc"], r["auroc_std"], r["n_seeds"]),
                      "ID acc": _fmt(r["acc"], r["acc_std"], r["acc_n"])},
}


def _accuracy_cells(row) -> Dict:
    return {"Acc": _fmt(row["acc"], row["acc_std"], row["acc_n"]), "epoch": _text(row["acc_epoch"])}


def _provenance_cells(row) -> Dict:
    """``--provenance`` columns: commits (``+dirty``: uncommitted changes), wall time per seed, peak memory."""
    if "commits" not in row:
        return {}
    wall = "" if pd.isna(row["wall_time_s"]) else format_seconds(row["wall_time_s"])
    memory = "" if pd.isna(row["peak_rss_mb"]) else f"{row['peak_rss_mb']:,.0f}"
    if not pd.isna(row["peak_cuda_mb"]):
        memory += f" / {row['peak_cuda_mb']:,.0f}"
    return {"commit": _text(row["commits"]), "wall time / seed": wall, "peak MB (RSS / CUDA)": memory}


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _compare_cells(row, sources: List[str]) -> Dict:
    """``--compare`` columns: the published B / N / HM, ours minus published (``!``: marked), the source."""
    if "pub_source" not in row:
        return {}
    if not isinstance(row["pub_source"], str):
        return {"published B / N / HM": "", "ours − published": "", "source": ""}
    if row["pub_source"] not in sources:
        sources.append(row["pub_source"])
    flags = (row["pub_flag"] or "").split(",")
    diffs = [f"{row[f'd_{c}']:+.2f}{'!' if c in flags else ''}" if not pd.isna(row[f"d_{c}"]) else "–"
             for c in ("base", "new", "hm")]
    return {"published B / N / HM": f"{row['pub_base']:.2f} / {row['pub_new']:.2f} / {row['pub_hm']:.2f}",
            "ours − published": " / ".join(diffs), "source": f"[{sources.index(row['pub_source']) + 1}]"}


def format_markdown(summary: pd.DataFrame) -> str:
    """Markdown tables, one per protocol, with mean ± population std over seeds (and the optional columns)."""
    sections, sources = [], []
    for protocol in sorted(summary["protocol"].unique(), key=PROTOCOL_ORDER.index):
        rows = summary[summary["protocol"] == protocol]
        cells = MARKDOWN_LAYOUTS.get(protocol, _accuracy_cells)
        table = pd.DataFrame([{"method": method_label(r), "dataset": r["dataset"], **cells(r),
                               "seeds": _seeds_cell(r), "missing seeds": _text(r["missing_seeds"]),
                               **_provenance_cells(r), **(_compare_cells(r, sources) if protocol == "base2new" else {})}
                              for _, r in rows.iterrows()])
        sections.append(f"## {protocol}\n\n{_to_markdown(table)}\n")
    note = "Values: mean ± population std (ddof=0) over seeds; HM and Average rows from seed-averaged Base and New."
    if sources:
        note += ("\nPublished values: ours − published is marked ! when larger than twice our seed std (1 point with "
                 "one seed, and for Average rows). Sources: " + "; ".join(f"[{i}] {s}" for i, s in
                                                                          enumerate(sources, 1)) + ".")
    return "\n".join(sections + [note]) + "\n"


def _text(value) -> str:
    """A text cell: blank for a missing value (no ``fillna`` on numeric columns)."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _to_markdown(table: pd.DataFrame) -> str:
    """``DataFrame.to_markdown`` (needs tabulate), falling back to a plain pipe table."""
    try:
        return table.to_markdown(index=False, disable_numparse=True)
    except ImportError:
        header = "| " + " | ".join(table.columns) + " |\n|" + "---|" * len(table.columns)
        body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
        return "\n".join([header] + body)


def short_labels(labels: List[str], width: int = 28) -> List[str]:
    """Drop the leading ``/``-separated parts all labels share, and wrap what is left."""
    parts = [label.split("/") for label in labels]
    common = 0
    while len(labels) > 1 and all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return [textwrap.fill("/".join(p[common:]), width) for p in parts]


def _bars(ax, groups: List[str], series: Dict[str, List[float]], title: str) -> None:
    """Grouped bar chart: one group per entry of ``groups``, one bar per series; missing values are left out."""
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (i - (len(series) - 1) / 2) * width for g in range(len(groups))]
        ax.bar(xs, [math.nan if pd.isna(v) else v for v in values], width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right", fontsize=7)
    ax.set_ylim(0, 125)  # head room for the legend
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(title, fontsize=9)
    if series:
        ax.legend(fontsize=6, loc="upper center", ncol=min(3, len(series)), frameon=False)


def plot_panels(summary: pd.DataFrame) -> List[Tuple[str, List[str], Dict[str, List[float]]]]:
    """Panels to draw: per base2new dataset (groups = methods; Base/New/HM), per other protocol (groups = datasets;
    one bar per method: accuracy, or AUROC for OOD)."""
    panels = []
    summary = summary.assign(method=[method_label(r) for _, r in summary.iterrows()])
    for protocol in summary["protocol"].unique():  # shorten labels per protocol (consistent across its panels)
        sel = summary["protocol"] == protocol
        methods = list(summary.loc[sel, "method"].unique())
        summary.loc[sel, "method"] = summary.loc[sel, "method"].map(dict(zip(methods, short_labels(methods))))
    b2n = summary[summary["protocol"] == "base2new"]
    for dataset in sorted(b2n["dataset"].unique(), key=lambda d: order_key(d, DATASET_ORDER)):
        rows = b2n[b2n["dataset"] == dataset]
        series = {name: list(rows[col]) for name, col in (("Base", "base"), ("New", "new"), ("HM", "hm"))}
        panels.append((f"base2new: {dataset}", list(rows["method"]), series))
    others = summary[summary["protocol"] != "base2new"]
    for protocol in sorted(others["protocol"].unique(), key=PROTOCOL_ORDER.index):
        metric = "auroc" if protocol == "ood" else "acc"
        rows = others[others["protocol"] == protocol].dropna(subset=[metric])
        table = rows.pivot_table(index="dataset", columns="method", values=metric, sort=False)
        table = table.loc[sorted(table.index, key=lambda d: order_key(d, DATASET_ORDER))]
        name = "AUROC" if metric == "auroc" else "accuracy"
        panels.append((f"{protocol}: {name}", list(table.index), {m: list(table[m]) for m in table.columns}))
    return [panel for panel in panels if panel[1]]


def plot_summary(summary: pd.DataFrame) -> bytes:
    """PNG bytes of the summary bar charts (matplotlib, Agg backend)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = plot_panels(summary) or [("no results", [], {})]
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.5 * ncols, 3.6 * nrows), squeeze=False)
    for ax, (title, groups, series) in zip(axes.flat, panels):
        _bars(ax, groups, series, title)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Safe output

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=osp.dirname(path) or ".", prefix=".tmp-", suffix=osp.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600 files
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def load_manifest(out_dir: str) -> Dict[str, str]:
    """File name -> sha256 of the files this script wrote into ``out_dir``."""
    try:
        with open(osp.join(out_dir, MANIFEST_NAME)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def choose_target(out_dir: str, name: str, manifest: Dict[str, str], overwrite: bool) -> str:
    """``name``, or a time-stamped variant when ``name`` exists and is not our own unchanged file."""
    path = osp.join(out_dir, name)
    if not osp.exists(path) or overwrite:
        return path
    with open(path, "rb") as f:
        if manifest.get(name) == _sha256(f.read()):
            return path
    stem, ext = osp.splitext(name)
    candidate, n = f"{stem}-{time.strftime('%Y-%m-%d-%H-%M-%S')}", 1
    while osp.exists(osp.join(out_dir, candidate + ext)):
        candidate, n = f"{stem}-{time.strftime('%Y-%m-%d-%H-%M-%S')}-{n}", n + 1
    warn(f"{path} exists and was not written by extract_log.py (or was edited since); "
         f"writing {candidate + ext} instead (use --overwrite to replace it)")
    return osp.join(out_dir, candidate + ext)


def write_outputs(contents: Dict[str, bytes], out_dir: str, overwrite: bool = False) -> Dict[str, str]:
    """Write ``{file name: bytes}`` into ``out_dir`` safely; return ``{file name: path written}``."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = load_manifest(out_dir)
    written = {}
    for name, data in contents.items():
        path = choose_target(out_dir, name, manifest, overwrite)
        atomic_write(path, data)
        manifest[osp.basename(path)] = _sha256(data)
        written[name] = path
    atomic_write(osp.join(out_dir, MANIFEST_NAME), json.dumps(manifest, indent=1, sort_keys=True).encode())
    return written


def render_outputs(long_df: pd.DataFrame, summary: pd.DataFrame, markdown: str, plot: bool) -> Dict[str, bytes]:
    """File contents of every output."""
    contents = {OUTPUT_NAMES["long"]: long_df.to_csv(index=False).encode(),
                OUTPUT_NAMES["summary"]: summary.to_csv(index=False).encode(),
                OUTPUT_NAMES["markdown"]: markdown.encode()}
    if plot:
        contents[OUTPUT_NAMES["plot"]] = plot_summary(summary)
    return contents


# ----------------------------------------------------------------------------------------------------------------
# Command line

def parse_args(argv=None) -> argparse.Namespace:
    """``OUTPUT_ROOT [--output_path DIR] [--plot] [--overwrite]`` or upstream ``--save_patch ROOT``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", help="output tree to walk (e.g. output10.0)")
    parser.add_argument("--save_patch", "--save-patch", dest="save_patch",
                        help="upstream extract_log_3.py name for ROOT")
    parser.add_argument("--output_path", "--output-path", dest="output_path",
                        help="folder for the CSV / markdown / PNG files (default: output_csv/<basename of ROOT>)")
    parser.add_argument("--plot", action="store_true", help="also write results.png")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing output files even if this script did not write them")
    parser.add_argument("--provenance", action="store_true",
                        help="add commit, wall time and peak memory (from each run's provenance.json) to the tables")
    parser.add_argument("--compare", nargs="?", const=PUBLISHED_B2N, metavar="CSV",
                        help="add the published base-to-novel numbers and our difference to them "
                             f"(default file: {osp.relpath(PUBLISHED_B2N)})")
    args = parser.parse_args(argv)
    if args.root and args.save_patch and osp.normpath(args.root) != osp.normpath(args.save_patch):
        parser.error("give the output root either positionally or with --save_patch, not both")
    args.root = args.root or args.save_patch
    if not args.root:
        parser.error("the output root is required (positional OUTPUT_ROOT or --save_patch)")
    if not args.output_path:
        args.output_path = osp.join("output_csv", osp.basename(osp.normpath(osp.abspath(args.root))))
    return args


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr if file is None else file)


def main(argv=None) -> int:
    """Command-line entry point; returns the exit status (1 when no result was found)."""
    args = parse_args(argv)
    if not osp.isdir(args.root):
        print(f"error: output root not found: {args.root}", file=sys.stderr)
        return 2
    with warnings.catch_warnings():
        warnings.simplefilter("always", LogWarning)
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Extract, print the markdown and write the output files."""
    try:
        long_df, summary = extract(args.root, provenance=args.provenance, compare=args.compare)
    except ValueError as e:  # an unreadable published-numbers file
        print(f"error: {e}", file=sys.stderr)
        return 2
    if long_df.empty:
        print(f"No results found under {args.root}", file=sys.stderr)
        return 1
    markdown = format_markdown(summary)
    print(markdown)
    written = write_outputs(render_outputs(long_df, summary, markdown, args.plot), args.output_path,
                            args.overwrite)
    for path in written.values():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
