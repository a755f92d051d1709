"""Zero-shot CLIP: logits = exp(logit_scale) * <normalised image feature, normalised text feature>."""
import torch

import clip
from dassl.engine import TRAINER_REGISTRY, TrainerX

from .templates import IMAGENET_TEMPLATES_SELECT, class_prompts, dataset_template


def load_clip(cfg, device):
    """The backbone of ``cfg.MODEL.BACKBONE`` on ``device``; fp32 on CPU (fp16 matmuls gain nothing there)."""
    print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
    model = clip.load_clip_to_cpu(cfg.MODEL.BACKBONE.NAME, pretrained=cfg.MODEL.BACKBONE.PRETRAINED)
    if device.type == "cpu":
        model = model.float()
    return model.to(device).eval()


@torch.no_grad()
def text_classifier(clip_model, classnames, templates, device):
    """``[n_cls, D]`` normalised text features, averaged over ``templates`` (then renormalised)."""
    weights = []
    for template in templates:
        tokens = clip.tokenize(class_prompts(template, classnames)).to(device)
        feats = clip_model.encode_text(tokens)
        weights.append(feats / feats.norm(dim=-1, keepdim=True))
    weights = torch.stack(weights).mean(0)
    return weights / weights.norm(dim=-1, keepdim=True)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(TrainerX):
    """Hand-written prompt per dataset (``CUSTOM_TEMPLATES``); nothing is trained or registered."""

    def templates(self):
        return [dataset_template(self.cfg.DATASET.NAME)]

    def build_model(self):
        classnames = self.dm.dataset.classnames
        self.clip_model = load_clip(self.cfg, self.device)
        prompts = class_prompts(self.templates()[0], classnames)
        print(f"Prompts: {prompts[:3]}{' ...' if len(prompts) > 3 else ''}")
        self.text_features = text_classifier(self.clip_model, classnames, self.templates(), self.device)

    def model_inference(self, image):
        image_features = self.clip_model.encode_image(image.type(self.clip_model.dtype))
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        logit_scale = self.clip_model.logit_scale.exp()
        return logit_scale * image_features @ self.text_features.t().type(image_features.dtype)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Ensemble of the 7 ``IMAGENET_TEMPLATES_SELECT`` plus the dataset's own template (non-ImageNet)."""

    def templates(self):
        templates = list(IMAGENET_TEMPLATES_SELECT)
        if not self.cfg.DATASET.NAME.startswith("ImageNet"):
            templates.append(dataset_template(self.cfg.DATASET.NAME))
        return templates
