"""Prompt-OT (arXiv 2503.08906): IVLP deep prompts + an OT constraint towards frozen CLIP.

Per mini-batch of B samples with labels y:
    z_i  = [v_i ; t_{y_i}]          prompted, normalised image / ground-truth-class text features
    z0_j = [v0_j ; t0_{y_j}]        frozen CLIP features ("a photo of a {c}." text)
    C_ij = eta1 * (w_v ||v_i - v0_j||^2 + w_t ||t_{y_i} - t0_{y_j}||^2)       (eta1 = 0.5, w = 1, 1)
    pi*  = argmin_{pi in U(1/B, 1/B)} <pi, C>                                 (exact EMD on detached C)
    L    = CE(exp(s) v t^T, y) + lambda <pi*, C>                               (lambda = 10)
Gradients reach the prompts through C only (envelope); Prompt-OT's ``trainers/promptot.py`` (``miniBatchOT``).
"""
import torch

from dassl.engine import TRAINER_REGISTRY

from .ivlp import VLPromptTrainer
from .optimal_transport import ot_value
from .templates import IMAGENET_TEMPLATES

OT_SOLVERS = ("emd", "hungarian", "sinkhorn")
ZS_TEXTS = {"template0": IMAGENET_TEMPLATES[:1], "ensemble60": IMAGENET_TEMPLATES}


def joint_ot_cost(v, t, v0, t0, scale=0.5, weights=(1.0, 1.0)):
    """``C [B, B]`` between adapted ``(v, t)`` and frozen ``(v0, t0)`` joint points, each ``[B, E]``."""
    dv = torch.cdist(v.float(), v0.float()) ** 2
    dt = torch.cdist(t.float(), t0.float()) ** 2
    return scale * (weights[0] * dv + weights[1] * dt)


def ot_regulariser(cost, solver="emd", eps=0.0, iters=10):
    """``<pi*, C>`` with the plan of ``solver`` held constant (gradient through ``C``)."""
    if solver == "sinkhorn":
        if not eps > 0:
            raise ValueError("TRAINER.PROMPTOT.OT_EPS must be > 0 with OT_SOLVER sinkhorn")
        return ot_value(cost, method="sinkhorn", eps=eps, max_iter=iters,
                        cap_hint="TRAINER.PROMPTOT.OT_EPS / TRAINER.PROMPTOT.OT_ITERS")
    if solver == "emd":
        # Explicit uniform marginals select POT's network simplex: the released solver, same tie-breaking.
        n = cost.shape[-1]
        uniform = torch.full((n,), 1.0 / n, dtype=torch.float64, device=cost.device)
        return ot_value(cost, uniform, uniform, method="exact")
    return ot_value(cost, method="hungarian")  # the same optimum; on device for batches up to 6


@TRAINER_REGISTRY.register()
class PromptOT(VLPromptTrainer):
    cfg_node = "PROMPTOT"

    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        t = cfg.TRAINER.PROMPTOT
        if t.OT_SOLVER not in OT_SOLVERS:
            raise ValueError(f"TRAINER.PROMPTOT.OT_SOLVER must be one of {OT_SOLVERS}, got '{t.OT_SOLVER}'")
        if t.ZS_TEXT not in ZS_TEXTS:
            raise ValueError(f"TRAINER.PROMPTOT.ZS_TEXT must be one of {sorted(ZS_TEXTS)}, got '{t.ZS_TEXT}'")
        if t.OT_SOLVER == "sinkhorn" and not t.OT_EPS > 0:
            raise ValueError("TRAINER.PROMPTOT.OT_EPS must be > 0 with OT_SOLVER sinkhorn")

    def build_model(self):
        super().build_model()
        print(f"Prompt-OT: lambda = {self.tcfg.LAMBDA}, solver = {self.tcfg.OT_SOLVER}")

    def frozen_text_templates(self):
        return ZS_TEXTS[self.tcfg.ZS_TEXT]

    def frozen_text_mean(self):
        return self.tcfg.TEXT_TARGET_MEAN

    def compute_loss(self, images, labels):
        t = self.tcfg
        model = self.model
        image, text, logits = self.prompted_outputs(images)
        loss_ce = self.cross_entropy(logits, labels)
        if t.LAMBDA == 0:  # IVLP exactly; skip the frozen forward
            return loss_ce, {"loss_ce": loss_ce, "loss_ot": torch.zeros_like(loss_ce)}, logits
        norm = lambda x: x / x.norm(dim=-1, keepdim=True)  # noqa: E731
        zs_image = model.frozen_image_features(images)
        cost = joint_ot_cost(norm(image), norm(text)[labels], norm(zs_image), self.zs_text_features()[labels],
                             scale=t.OT_COST_SCALE, weights=tuple(t.OT_MODALITY_WEIGHTS))
        loss_ot = ot_regulariser(cost, t.OT_SOLVER, t.OT_EPS, t.OT_ITERS).to(loss_ce.dtype)
        loss = loss_ce + t.LAMBDA * loss_ot
        return loss, {"loss_ce": loss_ce, "loss_ot": loss_ot}, logits
