"""``Classification`` evaluator: accuracy, error and macro-F1, printed as Dassl's ``=> result`` block."""
import os.path as osp
from collections import OrderedDict, defaultdict

import numpy as np
import torch

from dassl.utils import Registry, check_availability

EVALUATOR_REGISTRY = Registry("EVALUATOR")


def build_evaluator(cfg, **kwargs):
    avai_evaluators = EVALUATOR_REGISTRY.registered_names()
    check_availability(cfg.TEST.EVALUATOR, avai_evaluators)
    if cfg.VERBOSE:
        print(f"Loading evaluator: {cfg.TEST.EVALUATOR}")
    return EVALUATOR_REGISTRY.get(cfg.TEST.EVALUATOR)(cfg, **kwargs)


class EvaluatorBase:
    def __init__(self, cfg):
        self.cfg = cfg

    def reset(self):
        raise NotImplementedError

    def process(self, mo, gt):
        raise NotImplementedError

    def evaluate(self):
        raise NotImplementedError


@EVALUATOR_REGISTRY.register()
class Classification(EvaluatorBase):
    """Accumulate argmax predictions ``mo [B, C]`` against labels ``gt [B]``."""

    def __init__(self, cfg, lab2cname=None, **kwargs):
        super().__init__(cfg)
        self._lab2cname = lab2cname
        self._per_class_res = None
        if cfg.TEST.PER_CLASS_RESULT:
            assert lab2cname is not None
        self.reset()

    def reset(self):
        self._correct = 0
        self._total = 0
        self._y_true = []
        self._y_pred = []
        if self.cfg.TEST.PER_CLASS_RESULT:
            self._per_class_res = defaultdict(list)

    def process(self, mo, gt):
        pred = mo.max(1)[1]
        matches = pred.eq(gt).int()
        self._correct += int(matches.sum().item())
        self._total += gt.shape[0]
        self._y_true.extend(gt.data.cpu().numpy().tolist())
        self._y_pred.extend(pred.data.cpu().numpy().tolist())
        if self._per_class_res is not None:
            for i, label in enumerate(gt):
                self._per_class_res[label.item()].append(int(matches[i].item()))

    def evaluate(self):
        from sklearn.metrics import f1_score  # imported here: sklearn costs ~3 s at start-up

        results = OrderedDict()
        acc = 100.0 * self._correct / self._total
        err = 100.0 - acc
        macro_f1 = 100.0 * f1_score(self._y_true, self._y_pred, average="macro",
                                    labels=np.unique(self._y_true))
        results["accuracy"] = acc
        results["error_rate"] = err
        results["macro_f1"] = macro_f1
        print(
            "=> result\n"
            f"* total: {self._total:,}\n"
            f"* correct: {self._correct:,}\n"
            f"* accuracy: {acc:.1f}%\n"
            f"* error: {err:.1f}%\n"
            f"* macro_f1: {macro_f1:.1f}%"
        )
        if self._per_class_res is not None:
            labels = sorted(self._per_class_res.keys())
            print("=> per-class result")
            accs = []
            for label in labels:
                classname = self._lab2cname[label]
                res = self._per_class_res[label]
                correct, total = sum(res), len(res)
                acc_c = 100.0 * correct / total
                accs.append(acc_c)
                print(f"* class: {label} ({classname})\ttotal: {total:,}\tcorrect: {correct:,}\tacc: {acc_c:.1f}%")
            mean_acc = float(np.mean(accs))
            print(f"* average: {mean_acc:.1f}%")
            results["perclass_accuracy"] = mean_acc
        if self.cfg.TEST.COMPUTE_CMAT:
            from sklearn.metrics import confusion_matrix

            cmat = confusion_matrix(self._y_true, self._y_pred, normalize="true")
            save_path = osp.join(self.cfg.OUTPUT_DIR, "cmat.pt")
            torch.save(cmat, save_path)
            print(f"Confusion matrix is saved to {save_path}")
        return results
