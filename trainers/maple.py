"""MaPLe (Khattak et al., CVPR 2023): multi-modal prompts, the vision prompts coupled to the text prompts.

Text: context ``P_0 [n, D_t]`` at the input and ``P_j`` replacing the context positions in blocks
``j = 1 .. J-1`` (J = ``PROMPT_DEPTH``). Vision: ``F_0(P_0)`` appended at the input and ``F_j(P_j)`` replacing
the prompt tokens in block j, with linear couplings ``F_j: D_t -> W`` (``proj`` for the input,
``compound_prompt_projections[j-1]`` deeper; MaPLe's ``trainers/maple.py``).
    L = CE(exp(s) * cos(f(x; F(P)), g(c; P)), y)
"""
import copy
from typing import Optional

import torch
import torch.nn as nn

from dassl.engine import TRAINER_REGISTRY

from .prompt_trainer import PromptTrainer
from .prompts import (
    PROMPT_INIT_STD, ClassTokens, PromptLearner, Prompts, clamp_depth, context_init, random_prompts,
)


class MultiModalPromptLearner(PromptLearner):
    """MaPLe's prompt learner; parameter names are upstream's, so its checkpoints load unchanged:
    ``ctx [n, D_t]``, ``proj`` (D_t -> W), ``compound_prompts_text.{j} [n, D_t]`` and
    ``compound_prompt_projections.{j}`` (D_t -> W) for blocks ``j + 1 = 1 .. depth-1``.

    ``sets`` (ALIGN, upstream ``trainers/mmp.py``): S prompt sets, every prompt tensor gets a set axis
    (``ctx [S, n, D_t]``, ``compound_prompts_text.{j} [S, n, D_t]``); the couplings are shared by the sets, so
    visual prompt set s is the projection of text prompt set s. ``ctx_init`` is then split on tab characters:
    piece s initialises set s (as MaPLe's single init), the other sets are random with the text "X .. X".
    """

    def __init__(self, clip_model, classnames, n_ctx: int, ctx_init: str, depth: int, sets: Optional[int] = None,
                 depth_key: str = "TRAINER.MAPLE.PROMPT_DEPTH"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"{depth_key} must be >= 1 (prompts at the input), got {depth}")
        n_layers = min(len(clip_model.transformer.resblocks), len(clip_model.visual.transformer.resblocks))
        depth = clamp_depth(depth_key.rsplit(".", 1)[-1], depth, n_layers)
        text_width = clip_model.ln_final.weight.shape[0]
        vision_width = clip_model.visual.conv1.out_channels
        inits = [ctx_init] if sets is None else (ctx_init.split("\t") + [""] * sets)[:sets]
        ctx, prefixes = [], []
        for text in inits:
            init, prefix, n_ctx = context_init(clip_model, text, n_ctx, rule="first_n")
            ctx.append(torch.empty(n_ctx, text_width).normal_(std=PROMPT_INIT_STD) if init is None else init)
            prefixes.append(prefix)
        self.ctx = nn.Parameter(ctx[0] if sets is None else torch.stack(ctx))
        self.sets = sets
        self.prompt_prefix = prefixes[0] if sets is None else prefixes
        self.proj = nn.Linear(text_width, vision_width)
        self.compound_prompts_text = random_prompts(n_ctx, text_width, depth - 1, sets)
        coupling = nn.Linear(text_width, vision_width)  # upstream clones one layer: all start equal
        self.compound_prompt_projections = nn.ModuleList([copy.deepcopy(coupling) for _ in range(depth - 1)])
        self.classes = ClassTokens(clip_model, classnames, prefixes, n_ctx)

    def forward(self, image_features=None) -> Prompts:
        deep_text = list(self.compound_prompts_text)
        deep_vision = [f(p) for f, p in zip(self.compound_prompt_projections, deep_text)]
        ctx, vision_ctx = self.ctx, self.proj(self.ctx)
        if self.sets == 1:  # one set: the shared-prompt layout of the encoders
            ctx, vision_ctx = ctx[0], vision_ctx[0]
            deep_text, deep_vision = [p[0] for p in deep_text], [p[0] for p in deep_vision]
        return Prompts(class_tokens=self.classes, text_ctx=ctx, text_deep=deep_text, vision_ctx=vision_ctx,
                       vision_deep=deep_vision, sets=self.sets or 1)


@TRAINER_REGISTRY.register()
class MaPLe(PromptTrainer):
    cfg_node = "MAPLE"
    model_name = "MultiModalPromptLearner"

    def build_prompt_learner(self, clip_model, classnames):
        t = self.tcfg
        learner = MultiModalPromptLearner(clip_model, classnames, t.N_CTX, t.CTX_INIT, t.PROMPT_DEPTH)
        print("MaPLe design: Multi-modal Prompt Learning")
        print(f'Initial context: "{learner.prompt_prefix}"')
        print(f"Number of MaPLe context words (tokens): {t.N_CTX}")
        return learner

    def compute_loss(self, images, labels):
        _, _, logits = self.prompted_outputs(images)
        return self.cross_entropy(logits, labels), {}, logits
