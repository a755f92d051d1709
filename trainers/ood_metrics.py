"""OOD detection scores (MCM, L-MCM, GL-MCM) and metrics (FPR95, AUROC).

Scores follow SOT-GLP's ``compute_scores`` (``sot-glp/models/sotglp_model.py``), higher = more OOD, on raw
cosine similarities divided by a temperature ``T`` (released default 1000):

* MCM    ``-max_c softmax_c(g[b, c] / T)``, ``g [B, C]`` the global similarities (averaged over prompts);
* L-MCM  ``-max_{p, c} softmax_c(r[b, p, c] / T)``, ``r [B, P, C]`` the local similarities of every patch
  (averaged over each class's local prompts);
* GL-MCM the sum of both.

Metrics as the MCM / GalLoP code (``lib/ood_metrics.py``): FPR95 is ODIN's ``fpr_and_fdr_at_recall`` with the
in-distribution images as positives and the negated score as their confidence, at recall 0.95 (the operating
point whose recall is closest to 0.95); AUROC is the area under the ROC curve of the raw score with OOD as the
positive class (ties count one half, as ``sklearn.metrics.roc_auc_score``).
"""
import numpy as np
import torch

OOD_METHODS = ("MCM", "L-MCM", "GL-MCM")


def max_softmax(sim: torch.Tensor, temp: float) -> torch.Tensor:
    """``max`` over the last axis of ``softmax(sim / temp)`` (float32): ``[..., C] -> [...]``."""
    return torch.softmax(sim.float() / temp, dim=-1).max(dim=-1).values


def ood_score(method: str, temp: float, global_sim=None, local_sim=None) -> torch.Tensor:
    """Per-image OOD score ``[B]`` from ``global_sim [B, C]`` and / or ``local_sim [B, P, C]``."""
    if method not in OOD_METHODS:
        raise ValueError(f"TRAINER.SOTGLP.OOD_METHOD must be one of {OOD_METHODS}, got '{method}'")
    score = 0.0
    if method in ("MCM", "GL-MCM"):
        score = score - max_softmax(global_sim, temp)
    if method in ("L-MCM", "GL-MCM"):
        score = score - max_softmax(local_sim, temp).max(dim=-1).values
    return score


def fpr_at_recall(id_score, ood_score_, recall_level: float = 0.95) -> float:
    """FPR (fraction of OOD images accepted) at the threshold whose ID recall is closest to ``recall_level``.

    ``id_score [n_in]``, ``ood_score_ [n_out]`` (higher = more OOD; ID confidence = ``-score``). Thresholds run
    over the distinct confidences from the highest down to the first one that accepts every ID image; among
    equally close recalls the larger one (lower threshold) wins, as ODIN's ``fpr_and_fdr_at_recall``."""
    conf = -np.concatenate([np.asarray(id_score, np.float64), np.asarray(ood_score_, np.float64)])
    is_id = np.r_[np.ones(len(id_score), bool), np.zeros(len(ood_score_), bool)]
    order = np.argsort(-conf, kind="mergesort")
    conf, is_id = conf[order], is_id[order]
    last_of_value = np.r_[np.nonzero(np.diff(conf))[0], conf.size - 1]  # last index of each distinct value
    tps = np.cumsum(is_id)[last_of_value]
    fps = last_of_value + 1 - tps
    full = int(np.searchsorted(tps, tps[-1]))  # first threshold accepting every ID image
    recall = tps[:full + 1] / tps[-1]
    gap = np.abs(recall - recall_level)
    pick = np.nonzero(gap == gap.min())[0][-1]
    return float(fps[pick]) / max(int((~is_id).sum()), 1)


def auroc(id_score, ood_score_) -> float:
    """Area under the ROC curve for separating OOD (positive, higher score) from ID (Mann-Whitney U with
    average ranks for ties)."""
    from scipy.stats import rankdata

    id_score, ood_score_ = np.asarray(id_score, np.float64), np.asarray(ood_score_, np.float64)
    ranks = rankdata(np.concatenate([id_score, ood_score_]))
    n_in, n_out = len(id_score), len(ood_score_)
    return float((ranks[n_in:].sum() - n_out * (n_out + 1) / 2) / (n_in * n_out))


def ood_block(id_name: str, method: str, temp: float, results) -> str:
    """The log block ``extract_log.py`` reads: ``results`` = ``[(set name, fpr95 %, auroc %)]``; an
    ``average`` line follows the sets."""
    lines = [f"=> OOD result (ID: {id_name}, score: {method}, T: {float(temp)})"]
    lines += [f"* {name}: FPR95 {fpr:.1f}% AUROC {auc:.1f}%" for name, fpr, auc in results]
    if results:
        lines.append(f"* average: FPR95 {np.mean([r[1] for r in results]):.1f}% "
                     f"AUROC {np.mean([r[2] for r in results]):.1f}%")
    return "\n".join(lines)
