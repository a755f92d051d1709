"""PromptSRC (Khattak et al., ICCV 2023): IVLP prompts regularised towards frozen CLIP.

    L = CE + KL(softmax(zs_logits) || softmax(logits)) / (B*C)
           + TEXT_LOSS_WEIGHT * mean|t - t_zs| + IMAGE_LOSS_WEIGHT * mean|v - v_zs|
with normalised features, frozen text targets = the 60 ImageNet templates' features averaged, then normalised
(``TEXT_TARGET_MEAN raw``, PromptSRC's ``fixed_embeddings``; ``normalized`` averages normalised ones), and Gaussian
prompt aggregation (GPA) of the per-epoch weights, weight_e = N(e; GPA_MEAN, GPA_STD), normalised.
"""
import math

import torch
import torch.nn.functional as F

from dassl.engine import TRAINER_REGISTRY

from .ivlp import VLPromptTrainer
from .templates import IMAGENET_TEMPLATES

GPA_PREFIX = "gpa_sum."


def gpa_weights(max_epoch, mean, std):
    """Gaussian weights of epochs ``1 .. max_epoch``, normalised to sum 1."""
    w = [math.exp(-0.5 * ((e - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi)) for e in range(1, max_epoch + 1)]
    total = sum(w)
    return [x / total for x in w]


@TRAINER_REGISTRY.register()
class PromptSRC(VLPromptTrainer):
    cfg_node = "PROMPTSRC"

    def build_model(self):
        super().build_model()
        t = self.tcfg
        self.gpa = gpa_weights(self.cfg.OPTIM.MAX_EPOCH, t.GPA_MEAN, t.GPA_STD)
        self.gpa_sum = None

    def frozen_text_templates(self):
        return IMAGENET_TEMPLATES

    def frozen_text_mean(self):
        return self.tcfg.TEXT_TARGET_MEAN

    def compute_loss(self, images, labels):
        t = self.tcfg
        model = self.model
        image, text, logits = self.prompted_outputs(images)
        zs_image = model.frozen_image_features(images)
        zs_text = self.zs_text_features()
        zs_logits = model.logits(zs_image, zs_text.to(zs_image.dtype))
        norm = lambda x: (x / x.norm(dim=-1, keepdim=True)).float()  # noqa: E731
        loss_ce = self.cross_entropy(logits, labels)
        loss_text = F.l1_loss(norm(text), zs_text.float(), reduction="mean") * t.TEXT_LOSS_WEIGHT
        loss_image = F.l1_loss(norm(image), norm(zs_image), reduction="mean") * t.IMAGE_LOSS_WEIGHT
        loss_kl = F.kl_div(F.log_softmax(logits.float(), dim=1), F.log_softmax(zs_logits.float(), dim=1),
                           reduction="sum", log_target=True) / logits.numel()
        loss = loss_ce + loss_kl + loss_text + loss_image
        return loss, {"loss_ce": loss_ce, "loss_scl": loss_kl + loss_text + loss_image}, logits

    # --------------------------------------------------------------------------- GPA
    def after_last_batch(self):
        """Add this epoch's weights x N(e; mean, std); after the last epoch load the aggregate."""
        weight = self.gpa[self.epoch]
        current = super().model_state_dict(self.model_name)
        if self.gpa_sum is None:
            self.gpa_sum = {k: v.detach().float() * weight for k, v in current.items()}
        else:
            for k, v in current.items():
                self.gpa_sum[k] += v.detach().float() * weight
        if self.epoch + 1 == self.max_epoch:
            print("Using GPA model for final inference...")
            self.load_model_state(self.model_name, {k: v.clone() for k, v in self.gpa_sum.items()})

    def model_state_dict(self, name):
        state = super().model_state_dict(name)
        if self.gpa_sum is not None and self.epoch + 1 < self.max_epoch:
            state.update({GPA_PREFIX + k: v.clone() for k, v in self.gpa_sum.items()})  # needed to resume
        return state

    def load_model_state(self, name, state_dict):
        gpa = {k[len(GPA_PREFIX):]: v.float() for k, v in state_dict.items() if k.startswith(GPA_PREFIX)}
        super().load_model_state(name, {k: v for k, v in state_dict.items() if not k.startswith(GPA_PREFIX)})
        if gpa:
            self.gpa_sum = {k: v.to(self.device) for k, v in gpa.items()}
