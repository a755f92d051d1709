"""SOT-GLP's model (Kizaroglu et al., "Local-Global Prompt Learning via Sparse Optimal Transport", 2026), as
released (``sot-glp/models/sotglp_model.py``, ``sot-glp/models/tools/gl_sot_loss.py``).

Shapes: B images, C classes, G global prompts, N local prompts per class, P patches, k selected patches,
E joint embedding, n context tokens, D text width, W vision width.

    f_b       = norm(proj(ln_post(x[:, 0])))                    global image feature (CLIP's own)
    z_{b,p}   = norm(proj(local_proj(ln_post(x_res[:, p]))))    V-V patch features (``vv_attention.py``)
    g[b,c,m]  = <f_b, t^g_{c,m}>                                 global prompts shared by all classes
    S[b,p,c,n]= <z_{b,p}, t^l_{c,n}>                             class-specific local prompts
    Omega_bc  = top-k_p mean_n S[b,p,c,n]                        one support shared by the class's N prompts
    T_bc      = Sinkhorn(exp(-(1 - S_sel)/eps), 1/k, 1/N)        balanced, no gradient, all B*C at once
    s[b,c]    = <T_bc, S_sel_bc> / N                             ``LOCAL_SCORE_NORM mean_over_prompts``
    L         = CE(tau g[b,:,m_b], y) + CE(tau s, y)             m_b: a random global prompt per sample
    predict   = argmax_c (mean_m g[b,c,m] + s[b,c]) / 2          tau = exp(CLIP logit scale), frozen
"""
import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn

from .encoders import _project, checkpoint_segments
from .optimal_transport import sinkhorn, unbalanced_sinkhorn
from .prompted_clip import PromptedCLIP, normalize
from .prompts import ClassTokens, PromptLearner, Prompts, context_init
from .vv_attention import dual_trunk

LOCAL_INITS = ("random", "gram")
OT_PLANS = ("sinkhorn", "uniform")
OT_STOP_RULES = ("upstream", "tol")
LOCAL_SCORE_NORMS = ("mean_over_prompts", "sum")


# ------------------------------------------------------------------------------------------- prompts
class SOTGLPPromptLearner(PromptLearner):
    """``global_prompt [G, n, D]`` (all G start as the embedding of ``ctx_init``), ``local_prompts
    [C, N, n, D]`` (``random``: Xavier-uniform over the 4-D tensor; ``gram``: per class and token N
    orthonormal vectors x 0.001, generator seeded with 1) and ``local_proj`` (W -> W, no bias, identity init).

    The class prompt is ``[SOS] ctx(n) <class name> [EOT]``: the name is tokenised alone, no trailing ".".
    ``forward`` gives one ``Prompts`` with ``sets = G + N``: sets ``0..G-1`` global, ``G..`` local.
    """

    # names in upstream checkpoints (GalLoP lineage: ``trainable_state_dict``) -> ours
    UPSTREAM_KEY_MAP = (
        (r"^(?:module\.)?global_prompt$", "prompt_learner.global_prompt"),
        (r"^(?:module\.)?local_prompts?$", "prompt_learner.local_prompts"),
        (r"^(?:module\.)?local_proj\.linear\.weight$", "prompt_learner.local_proj.weight"),
    )

    def __init__(self, clip_model, classnames, n_ctx: int, ctx_init: str, n_global: int, n_local: int,
                 local_init: str = "random", learn=(True, True, True)):
        super().__init__()
        #: which of (global_prompt, local_prompts, local_proj) learn (``LEARN_*``; frozen ones are not saved)
        self.learn = tuple(learn)
        if n_global < 1:
            raise ValueError(f"TRAINER.SOTGLP.N_GLOBAL_PROMPTS must be >= 1, got {n_global}")
        if n_local < 0:
            raise ValueError(f"TRAINER.SOTGLP.N_LOCAL_PROMPTS must be >= 0, got {n_local}")
        if local_init not in LOCAL_INITS:
            raise ValueError(f"TRAINER.SOTGLP.LOCAL_INIT must be one of {LOCAL_INITS}, got '{local_init}'")
        init, prefix, n_ctx = context_init(clip_model, ctx_init, n_ctx, rule="first_n")
        width = clip_model.token_embedding.weight.shape[1]
        if init is None:
            init = torch.empty(n_ctx, width).normal_(std=0.02)
        self.global_prompt = nn.Parameter(init.unsqueeze(0).repeat(n_global, 1, 1))
        local = torch.empty(len(classnames), n_local, n_ctx, width)
        if n_local:
            if local_init == "random":
                nn.init.xavier_uniform_(local)
            else:
                gen = torch.Generator().manual_seed(1)
                gauss = torch.randn(len(classnames), n_ctx, width, n_local, generator=gen)
                q = torch.linalg.qr(gauss).Q  # [C, n, D, N], orthonormal columns
                local = 0.001 * q.permute(0, 3, 1, 2)
        self.local_prompts = nn.Parameter(local.contiguous())
        vision_width = clip_model.visual.conv1.out_channels
        self.local_proj = nn.Linear(vision_width, vision_width, bias=False)
        with torch.no_grad():
            self.local_proj.weight.copy_(torch.eye(vision_width))
        self.n_global, self.n_local, self.n_ctx = n_global, n_local, n_ctx
        self.prompt_prefix = prefix
        self.classes = ClassTokens(clip_model, classnames, [prefix], n_ctx, template="{prefix} {name}")

    def forward(self, image_features=None) -> Prompts:
        n_cls = self.classes.n_cls
        glob = self.global_prompt.unsqueeze(0).expand(n_cls, -1, -1, -1)
        return Prompts(class_tokens=self.classes, text_ctx=torch.cat([glob, self.local_prompts], dim=1),
                       sets=self.n_global + self.n_local)


# ---------------------------------------------------------------------------------- local score (OT)
@dataclass
class OTConfig:
    """How the local score reduces the selected similarities (``TRAINER.SOTGLP.OT_*``)."""

    topk: int = 10
    eps: float = 0.1
    max_iter: int = 100
    thresh: float = 0.01  # upstream rule: mean |r - r_prev| over all B*C problems
    stop_rule: str = "upstream"  # upstream | tol (per problem, L1 row-marginal violation < tol)
    tol: float = 1e-6
    plan: str = "sinkhorn"  # sinkhorn | uniform
    unbalanced: bool = False  # upstream's commented-out variant: scalings raised to reg_m / (reg_m + eps)
    reg_m: float = 100.0
    score_norm: str = "mean_over_prompts"  # mean_over_prompts (<T,S>/N) | sum (<T,S>, PLOT)


def select_topk(z: torch.Tensor, t_local: torch.Tensor, k: int, class_chunk: int = 0):
    """Selected similarities ``S_sel [B, C, k, N]`` and the patch relevance ``r [B, P, C]``.

    ``z [B, P, E]`` and ``t_local [C, N, E]`` normalised. Per image and class the ``k`` patches with the largest
    ``r[b, p, c] = mean_n S[b, p, c, n]`` are kept, the same set for the class's N prompts
    (``gl_sot_loss.py``); no gradient through the choice, gradient through the gathered values.
    ``class_chunk > 0`` bounds the ``[B, P, c, N]`` similarity tensor to that many classes at a time."""
    sel, rel = [], []
    for S in local_similarities(z, t_local, class_chunk):  # [B, P, c, N]
        r = S.detach().mean(-1)  # [B, P, c]
        idx = r.topk(k, dim=1).indices  # [B, k, c]
        sel.append(S.gather(1, idx.unsqueeze(-1).expand(-1, -1, -1, S.shape[-1])).transpose(1, 2))
        rel.append(r)
    return torch.cat(sel, dim=1), torch.cat(rel, dim=2)


def local_similarities(z: torch.Tensor, t_local: torch.Tensor, class_chunk: int = 0):
    """``S [B, P, c, N]`` for successive chunks of ``class_chunk`` classes (all at once for 0)."""
    n_cls = t_local.shape[0]
    chunk = class_chunk if class_chunk > 0 else n_cls
    for c0 in range(0, n_cls, chunk):
        yield torch.einsum("bpe,cne->bpcn", z, t_local[c0:c0 + chunk].to(z.dtype))


def transport_plan(S_sel: torch.Tensor, ot: OTConfig) -> torch.Tensor:
    """The balanced entropic plan ``T [B, C, k, N]`` (float32, no gradient) of the costs ``1 - S_sel``, with
    uniform marginals ``1/k`` (patches) and ``1/N`` (prompts), all ``B x C`` problems in one batched call."""
    k, n = S_sel.shape[-2:]
    if ot.plan == "uniform":
        return torch.full(S_sel.shape, 1.0 / (k * n), dtype=torch.float32, device=S_sel.device)
    cost = 1.0 - S_sel.detach().float()
    if ot.unbalanced:
        return unbalanced_sinkhorn(cost, ot.eps, ot.reg_m, ot.max_iter, ot.thresh)
    if ot.stop_rule == "upstream":
        return sinkhorn(cost, eps=ot.eps, stop_rule="upstream", max_iter=ot.max_iter, tol=ot.thresh,
                        cap_hint="TRAINER.SOTGLP.OT_EPS / TRAINER.SOTGLP.OT_MAX_ITER")
    return sinkhorn(cost, eps=ot.eps, stop_rule="tol", max_iter=ot.max_iter, tol=ot.tol,
                    cap_hint="TRAINER.SOTGLP.OT_EPS / TRAINER.SOTGLP.OT_MAX_ITER")


def local_score(S_sel: torch.Tensor, plan: torch.Tensor, norm: str = "mean_over_prompts") -> torch.Tensor:
    """``s [B, C] = <T, S_sel>``, divided by N for ``mean_over_prompts`` (released: ``mean_n sum_m T S``)."""
    s = (plan.to(S_sel.dtype) * S_sel).sum((-2, -1))
    return s / S_sel.shape[-1] if norm == "mean_over_prompts" else s


def dropout_global_logits(g: torch.Tensor, p: float, generator: Optional[torch.Generator] = None):
    """Prompt dropout of the global loss: per sample ``max(G - floor(p G), 1)`` prompt indices drawn uniformly
    (with replacement, ``randint``); their logits averaged: ``g [B, C, G] -> [B, C]``."""
    B, _, G = g.shape
    kept = max(G - math.floor(p * G), 1)
    idx = torch.randint(0, G, (B, kept), generator=generator, device="cpu").to(g.device)
    return g.gather(2, idx.unsqueeze(1).expand(-1, g.shape[1], -1)).mean(-1)


# --------------------------------------------------------------------------------------------- model
@dataclass
class SOTGLPOutputs:
    """One forward: ``g [B, C, G]``, ``s [B, C]`` (None without local prompts), ``r [B, P, C]`` patch
    relevance (mean over each class's local prompts), all raw cosine similarities."""

    g: torch.Tensor
    s: Optional[torch.Tensor]
    r: Optional[torch.Tensor]

    def combined(self) -> torch.Tensor:
        """``l = (mean_m g + s) / 2`` (``create_prediction_scores_last``); ``mean_m g`` without local prompts."""
        g = self.g.mean(-1)
        return g if self.s is None else (g + self.s.to(g.dtype)) / 2


class SOTGLPCLIP(PromptedCLIP):
    """CLIP with SOT-GLP's dual-path vision trunk and global / local class prompts."""

    def __init__(self, clip_model, prompt_learner, backbone_name="the backbone"):
        super().__init__(clip_model, prompt_learner, backbone_name)
        if not self.image_encoder.is_vit:
            raise ValueError(f"MODEL.BACKBONE.NAME {backbone_name}: SOT-GLP's V-V attention needs a ViT backbone "
                             "(the released code supports ViTs only); use e.g. ViT-B/16")
        learner = self.prompt_learner
        for p, learn in zip((learner.global_prompt, learner.local_prompts, learner.local_proj.weight), learner.learn):
            p.requires_grad_(bool(learn) and p.numel() > 0)
        self.v2v_start, self.v2v_alias = 0, True
        self.ot = OTConfig()

    @property
    def n_patches(self) -> int:
        grid = self.image_encoder.visual.grid_size
        return int(grid[0] * grid[1])

    def set_text_checkpointing(self, segments: int):
        checkpoint_segments(self.text_encoder.transformer, segments)

    def encode_text_sets(self, class_chunk: int = 0):
        """Normalised ``t_global [C, G, E]`` and ``t_local [C, N, E]`` (with gradient)."""
        learner = self.prompt_learner
        t = normalize(self.encode_text(learner(), class_chunk))  # [C, G + N, E]
        return t[:, :learner.n_global], t[:, learner.n_global:]

    @torch.no_grad()
    def _trunk(self, images):
        """The frozen vision tower (nothing before ``local_proj`` learns): ``ln_post`` of the class token
        ``[B, W]`` and of the V-V patch tokens ``[B, P, W]``."""
        enc = self.image_encoder
        x, _ = enc.embed(images)
        x, x_res = dual_trunk(enc.visual.transformer, x, self.v2v_start, self.v2v_alias)
        return enc.visual.ln_post(x[:, 0]), enc.visual.ln_post(x_res[:, 1:])

    def encode_image_dual(self, images):
        """Normalised global ``f [B, E]`` and local ``z [B, P, E]`` (``encode_image_and_proj``)."""
        cls, patches = self._trunk(images)
        proj = self.image_encoder.visual.proj
        local = self.prompt_learner.local_proj(patches.to(self.prompt_learner.local_proj.weight.dtype))
        return normalize(_project(cls, proj)), normalize(_project(local.to(patches.dtype), proj))

    def outputs(self, images, t_global, t_local, class_chunk: int = 0, need_score: bool = True):
        """:class:`SOTGLPOutputs` of ``images`` against the class features (``need_score=False``: no top-k /
        OT, only ``g`` and ``r``, for OOD scores)."""
        f, z = self.encode_image_dual(images)
        g = torch.einsum("be,cme->bcm", f, t_global.to(f.dtype))
        if t_local.shape[1] == 0:
            return SOTGLPOutputs(g, None, None)
        if not need_score:
            r = torch.cat([S.mean(-1) for S in local_similarities(z, t_local, class_chunk)], dim=2)
            return SOTGLPOutputs(g, None, r)
        S_sel, r = select_topk(z, t_local, self.ot.topk, class_chunk)
        s = local_score(S_sel, transport_plan(S_sel, self.ot), self.ot.score_norm)
        return SOTGLPOutputs(g, s, r)

