"""A prompted CLIP for the text benchmarks: a backbone and ImageNet's 1000 class names, no dataset."""
import os.path as osp

import torch

import clip
from trainers.ivlp import VLPromptLearner
from trainers.maple import MultiModalPromptLearner
from trainers.prompted_clip import PromptedCLIP

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def imagenet_classnames(n: int):
    """The first ``n`` ImageNet class names (CLIP's names, as the ImageNet dataset loads them)."""
    with open(osp.join(REPO, "datasets", "imagenet_classnames.txt")) as f:
        names = [line.strip().split(" ", 1)[1] for line in f if line.strip()]
    return (names * (n // len(names) + 1))[:n]


def build_prompted_clip(backbone: str, classnames, learner: str = "IVLP", device="cpu", pretrained=True):
    """``PromptedCLIP`` with IVLP's (4+4 tokens, depth 9) or MaPLe's (2 tokens, depth 9) prompts, fp32."""
    model = clip.load_clip_to_cpu(backbone, pretrained=pretrained).float()
    if learner == "MaPLe":
        pl = MultiModalPromptLearner(model, classnames, n_ctx=2, ctx_init="a photo of a", depth=9)
    else:
        pl = VLPromptLearner(model, classnames, n_ctx_text=4, n_ctx_vision=4, ctx_init="a photo of a",
                             depth_text=9, depth_vision=9)
    return PromptedCLIP(model, pl, backbone_name=backbone).to(torch.device(device)).eval()


def image_size(model: PromptedCLIP) -> int:
    size = model.image_encoder.visual.image_size
    return size[0] if isinstance(size, (tuple, list)) else size
