"""CoCoOp (Zhou et al., CVPR 2022): conditional context, a meta-net shifts the context per image.

For image x with normalised frozen feature f(x):  ctx(x) = ctx + h(f(x)),  h = Linear - ReLU - Linear,
    logits[b, c] = exp(s) * cos(f(x_b), g([ctx(x_b), CLASS_c]))        L = CE(logits, y)
Upstream (CoOp's ``trainers/cocoop.py``) loops over the images; here the B x C prompt rows are encoded in
batched calls of ``TRAINER.COCOOP.CLASS_CHUNK`` classes (same logits, bounded memory).
"""
from collections import OrderedDict

import torch.nn as nn

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer
from .prompts import Prompts, TextContext


class ConditionalPromptLearner(TextContext):
    """CoOp's context (CoOp's ``CTX_INIT`` rule) plus the meta-net ``meta_net.linear1 / relu / linear2``
    (upstream names): ``[B, E] -> [B, D_t]``, added to every context token."""

    image_conditioned = True

    def __init__(self, clip_model, classnames, n_ctx: int, ctx_init: str):
        super().__init__(clip_model, classnames, n_ctx, ctx_init, rule="coop")
        vis_dim = clip_model.visual.output_dim
        width = self.ctx.shape[-1]
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(vis_dim // 16, width)),
        ]))

    def forward(self, image_features=None) -> Prompts:
        """``image_features [B, E]`` (normalised) -> per-image context ``[B, C, n, D_t]`` (a broadcast view)."""
        if image_features is None:
            raise ValueError("CoCoOp's prompts depend on the image: pass the image features")
        bias = self.meta_net(image_features.to(self.ctx.dtype))  # [B, D_t]
        ctx = self.ctx.unsqueeze(0) + bias.unsqueeze(1)  # [B, n, D_t]
        ctx = ctx.unsqueeze(1).expand(-1, self.classes.n_cls, -1, -1)
        return Prompts(class_tokens=self.classes, text_ctx=ctx, per_image=True)


@TRAINER_REGISTRY.register()
class CoCoOp(PromptTrainer):
    cfg_node = "COCOOP"
    model_name = "prompt_learner"

    def build_prompt_learner(self, clip_model, classnames):
        t = self.tcfg
        learner = ConditionalPromptLearner(clip_model, classnames, t.N_CTX, t.CTX_INIT)
        print(f'Initial context: "{learner.prompt_prefix}"')
        print(f"Number of context words (tokens): {learner.n_ctx}")
        return learner

    def registered_module(self):
        return self.model.prompt_learner

    def class_chunk(self):
        return self.tcfg.CLASS_CHUNK

    def compute_loss(self, images, labels):
        logits = self.model(images, class_chunk=self.class_chunk())
        return self.cross_entropy(logits, labels), {}, logits
