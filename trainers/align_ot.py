"""ALIGN's two-level optimal transport score (Wang et al., NeurIPS 2023; upstream ``trainers/mmp.py``).

Shapes: B images, C classes (c in a chunk), M visual and N textual prompt sets, P visual tokens (patches +
prompt outputs), L text tokens (padded; class c has ``L_c``), E embedding dim. Every feature is L2-normalised.

Token level, one upstream Sinkhorn call per (image, class) over its M*N problems, batched here over
(b, c, m, n) with zero-mass padding for the per-class token counts (the stop rule stays per call)::

    S_tok[b,c,m,n] = <x_{b,m,p}, y_{c,n,l}>                [P, L_c]
    T_tok          = Sinkhorn(exp(-(1 - S_tok)/eps), 1/P, 1/L_c)
    s_tok          = <T_tok, S_tok>          (``TOKEN_TERM similarity``, the released code)
    d_tok          = <T_tok, 1 - S_tok>      (``TOKEN_TERM distance``, the paper's d_OT of Eq. 6)

Prompt level, one Sinkhorn call over all B*C problems (one stop test, as upstream)::

    s_g   = <z_{b,m}, h_{c,n}>                               [M, N]
    cost  = (1 - s_g) + BETA * token term                    (``COST_FORM additive``; Eq. 6)
          = (1 - BETA) (1 - s_g) + BETA * token term         (``COST_FORM convex``; Eq. 9)
    T     = Sinkhorn(exp(-cost/eps), 1/M, 1/N)
    logit = scale * <T, s_g>                                 (``LOGITS global``, the released code)
          = scale * (1 - <T, cost>)                          (``LOGITS full_cost``)

Both plans carry no gradient (upstream builds them under ``no_grad``); the gradient reaches the prompts
through ``s_g`` (and, with ``full_cost``, through the token similarities).
"""
from dataclasses import dataclass
from typing import List, Optional

import torch

from .optimal_transport import sinkhorn

TOKEN_TERMS = ("similarity", "distance")
COST_FORMS = ("additive", "convex")
LOGIT_FORMS = ("global", "full_cost")
TOKEN_SLICES = ("prompt0_eot", "per_prompt")
OT_DTYPES = ("model", "fp32")
#: bytes per entry of the token-level batch ``[B, c, M*N, P, L]`` held at once (similarity, cost, plan, the
#: kernel and its transpose in the solver's chunks), for the automatic class chunk
TOKEN_BYTES_PER_ENTRY = 20


@dataclass
class OTSettings:
    """The ``TRAINER.ALIGN`` switches read by the score (see the module docstring)."""
    eps: float = 0.1
    max_iter: int = 100
    thresh: float = 1e-2
    hierarchical: bool = True
    token_term: str = "similarity"
    cost_form: str = "additive"
    beta: float = 1.0
    logits: str = "global"
    token_slice: str = "prompt0_eot"
    ot_dtype: str = "model"


@dataclass
class ClassEncodings:
    """What the score needs of the class prompts (independent of the images, so encoded once per evaluation).

    ``features [C, N, E]``; ``tokens [C, N, L, E]`` (zero after each prompt's slice) and ``lengths [C, N]``
    (its slice lengths), ``None`` without the token level; ``class_lengths``: per class the longest slice
    (host ints, to cut each class chunk's padding without a device sync).
    """
    features: torch.Tensor
    tokens: Optional[torch.Tensor] = None
    lengths: Optional[torch.Tensor] = None
    class_lengths: Optional[List[int]] = None


def normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def text_token_sets(tokens: torch.Tensor, eot: torch.Tensor, rule: str):
    """Token sets of the class prompts: ``tokens [C, N, L', E]`` (projected text-encoder outputs) and their EOT
    positions ``eot [C, N]`` -> normalised tokens with zeros past each slice, ``lengths [C, N]``.

    Upstream (``TextEncoder.forward`` of ``mmp.py``) slices every prompt of class c to positions
    ``[0, eot - 1)`` with the EOT of *prompt 0* (``prompt0_eot``): SOS, context, the fixed words and the name
    for prompt 0, one token more ("." and EOT instead of "of a") for the shorter prompts. ``per_prompt``: each
    prompt's own EOT.
    """
    ends = eot[:, :1].expand_as(eot) if rule == "prompt0_eot" else eot
    lengths = ends - 1
    valid = torch.arange(tokens.shape[-2], device=tokens.device) < lengths[..., None]
    return normalize(tokens) * valid[..., None].to(tokens.dtype), lengths


def token_level(image_tokens: torch.Tensor, text_tokens: torch.Tensor, lengths: torch.Tensor, s: OTSettings,
                ot_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``image_tokens [B, M, P, E]``, ``text_tokens [c, N, L, E]``, ``lengths [c, N]`` -> the token term
    ``[B, c, M, N]`` (``s_tok`` or ``d_tok``, per ``s.token_term``; with gradient through the token
    similarities when they require it). The plans are solved under no_grad in ``ot_dtype`` (default: float32)."""
    B, M, P, _ = image_tokens.shape
    c, N, L, _ = text_tokens.shape
    sim = torch.einsum("bmpe,cnle->bcmnpl", image_tokens, text_tokens.to(image_tokens.dtype))
    valid = torch.arange(L, device=lengths.device) < lengths[..., None]  # [c, N, L]
    mass = valid.to(torch.float32) / lengths[..., None].clamp_min(1)
    mass = mass[:, None].expand(c, M, N, L).reshape(1, c, M * N, L).expand(B, -1, -1, -1)
    with torch.no_grad():
        cost = (1 - sim.detach()).reshape(B, c, M * N, P, L)
        plan = sinkhorn(cost if ot_dtype is None else cost.to(ot_dtype), b=mass, eps=s.eps, max_iter=s.max_iter,
                        tol=s.thresh, stop_rule="upstream", call_dims=2, compute_dtype=ot_dtype,
                        cap_hint="TRAINER.ALIGN.OT_EPS / TRAINER.ALIGN.OT_MAX_ITER")
    plan = plan.view(B, c, M, N, P, L).to(sim.dtype)
    term = sim if s.token_term == "similarity" else 1 - sim
    return (plan * term).sum((-1, -2))


def prompt_cost(s_g: torch.Tensor, token_term: Optional[torch.Tensor], s: OTSettings) -> torch.Tensor:
    """Prompt-level cost ``[B, C, M, N]`` from the global cosines and the token term (module docstring)."""
    cost = 1 - s_g
    if token_term is None:  # HIERARCHICAL False: prompt level only
        return cost
    token_term = token_term.to(cost.dtype)
    if s.cost_form == "convex":
        return (1 - s.beta) * cost + s.beta * token_term
    return cost + s.beta * token_term


def prompt_level(s_g: torch.Tensor, token_term: Optional[torch.Tensor], scale: torch.Tensor, s: OTSettings,
                 ot_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """``s_g [B, C, M, N]`` (global cosines), the token term (or None) -> logits ``[B, C]``."""
    cost = prompt_cost(s_g, token_term, s)
    with torch.no_grad():
        c = cost.detach()
        plan = sinkhorn(c if ot_dtype is None else c.to(ot_dtype), eps=s.eps, max_iter=s.max_iter, tol=s.thresh,
                        stop_rule="upstream", compute_dtype=ot_dtype,
                        cap_hint="TRAINER.ALIGN.OT_EPS / TRAINER.ALIGN.OT_MAX_ITER")
    plan = plan.to(s_g.dtype)
    if s.logits == "global":
        score = (plan * s_g).sum((-1, -2))
    else:
        score = 1 - (plan * cost).sum((-1, -2))
    if not bool(torch.isfinite(score).all()):  # upstream returns None here, which crashes the training step
        raise FloatingPointError("ALIGN: the optimal-transport score is not finite (non-finite features or "
                                 "plans); train in full precision (TRAINER.ALIGN.PREC fp32) or lower the LR")
    return scale.to(score.dtype) * score
