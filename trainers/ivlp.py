"""Independent vision-language prompting (IVLP; PromptSRC paper's baseline).

Deep prompts in both encoders (``VLPromptLearner``), trained with cross-entropy only:
    L = CE(exp(s) * cos(f_p(x), g_p(c)), y)
"""
import torch
import torch.nn as nn

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer
from .prompts import PROMPT_INIT_STD, PromptLearner, Prompts, TextContext, clamp_depth, random_prompts


class VLPromptLearner(PromptLearner):
    """Independent vision-language deep prompts (IVLP): text ctx + deep text prompts, vision prompts + deep
    vision prompts. ``CTX_INIT`` is used when ``n_ctx_text <= 4``; its first ``n_ctx_text`` tokens become the
    learnable context (PromptSRC's ``trainers/independentVL.py``)."""

    # PromptSRC / Prompt-OT parameter names -> ours, for loading their full-state checkpoints.
    UPSTREAM_KEY_MAP = (
        (r"^prompt_learner\.ctx$", "prompt_learner.text.ctx"),
        (r"^image_encoder\.VPT$", "prompt_learner.vision_ctx"),
        (r"^image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow$", "prompt_learner.vision_deep.{i}"),
        (r"^text_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow$", "prompt_learner.text_deep.{i}"),
    )

    def __init__(self, clip_model, classnames, n_ctx_text: int, n_ctx_vision: int, ctx_init: str,
                 depth_text: int, depth_vision: int):
        super().__init__()
        depth_text = clamp_depth("PROMPT_DEPTH_TEXT", depth_text, len(clip_model.transformer.resblocks))
        if hasattr(clip_model.visual, "transformer"):
            depth_vision = clamp_depth("PROMPT_DEPTH_VISION", depth_vision,
                                       len(clip_model.visual.transformer.resblocks))
        self.text = TextContext(clip_model, classnames, n_ctx_text, ctx_init, rule="first_n")
        text_width = clip_model.ln_final.weight.shape[0]
        self.text_deep = random_prompts(n_ctx_text, text_width, max(depth_text - 1, 0))
        if depth_vision >= 1 and n_ctx_vision > 0:
            width = clip_model.visual.conv1.out_channels
            self.vision_ctx = nn.Parameter(torch.empty(n_ctx_vision, width).normal_(std=PROMPT_INIT_STD))
            self.vision_deep = random_prompts(n_ctx_vision, width, max(depth_vision - 1, 0))
        else:
            self.vision_ctx = None
            self.vision_deep = nn.ParameterList()

    def forward(self, image_features=None) -> Prompts:
        return Prompts(class_tokens=self.text.classes, text_ctx=self.text.ctx, text_deep=list(self.text_deep),
                       vision_ctx=self.vision_ctx, vision_deep=list(self.vision_deep))


class VLPromptTrainer(PromptTrainer):
    """Trainers built on ``VLPromptLearner`` (IVLP, PromptSRC, Prompt-OT) read the same config keys."""

    def build_prompt_learner(self, clip_model, classnames):
        t = self.tcfg
        learner = VLPromptLearner(clip_model, classnames, n_ctx_text=t.N_CTX_TEXT, n_ctx_vision=t.N_CTX_VISION,
                                  ctx_init=t.CTX_INIT, depth_text=t.PROMPT_DEPTH_TEXT,
                                  depth_vision=t.PROMPT_DEPTH_VISION)
        print("Independent V-L design")
        print(f'Initial text context: "{learner.text.prompt_prefix}"')
        print(f"Number of context words (tokens) for Language prompting: {t.N_CTX_TEXT}")
        print(f"Number of context words (tokens) for Vision prompting: {t.N_CTX_VISION}")
        return learner


@TRAINER_REGISTRY.register()
class IVLP(VLPromptTrainer):
    cfg_node = "IVLP"

    def compute_loss(self, images, labels):
        _, _, logits = self.prompted_outputs(images)
        return self.cross_entropy(logits, labels), {}, logits
