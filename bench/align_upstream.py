"""ALIGN's evaluation as the released code computes it (wds2014/ALIGN ``trainers/mmp.py``), for tests and benchmarks.

Written on the raw open_clip modules of a CLIP and the prompt learner's tensors, never through ``trainers/``:
full 77-token class prompts listed class-major, the image repeated per visual prompt (row ``b*M + m``), every
block run by hand with the prompt sets tiled over the rows, the text re-encoded for every call, the text token
sets cut at prompt 0's EOT, one Sinkhorn call per (image, class) with a host-side stop test every iteration
(``Sinkhorn`` of ``mmp.py``), then one prompt-level call over the batch. The project's switches
(``TRAINER.ALIGN.*``) are reproduced as keyword arguments, as the project's README defines them.
"""
import itertools

import torch

import clip
from bench.ot import upstream_sinkhorn


def unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def linear(layer, x):
    return x @ layer.weight.t() + layer.bias


def text_tokens(m, pl, classnames, sets):
    """Upstream TextEncoder: all projected tokens ``[C*N, 77, E]`` and the tokenised prompts ``[C*N, 77]``."""
    prefixes = pl.prompt_prefix if isinstance(pl.prompt_prefix, list) else [pl.prompt_prefix]
    names = [c.replace("_", " ") for c in classnames]
    tokens = clip.tokenize([f"{p} {n}." for n in names for p in prefixes]).to(m.token_embedding.weight.device)
    x = m.token_embedding(tokens)
    rows = x.shape[0]
    ctx = pl.ctx.reshape(sets, *pl.ctx.shape[-2:]).repeat(rows // sets, 1, 1).to(x.dtype)
    n = ctx.shape[1]
    x = torch.cat([x[:, :1], ctx, x[:, 1 + n:]], dim=1) + m.positional_embedding
    for i, block in enumerate(m.transformer.resblocks):
        if 1 <= i <= len(pl.compound_prompts_text):
            deep = pl.compound_prompts_text[i - 1].reshape(sets, n, -1).repeat(rows // sets, 1, 1).to(x.dtype)
            x = torch.cat([x[:, :1], deep, x[:, 1 + n:]], dim=1)
        x = block(x, attn_mask=m.attn_mask)
    return m.ln_final(x) @ m.text_projection, tokens


def image_tokens(m, pl, images, sets):
    """Upstream VisionTransformer_MMP: all tokens after ln_post @ proj, ``[B*M, 1 + patches + n, E]``."""
    v = m.visual
    images = images.unsqueeze(1).expand(-1, sets, -1, -1, -1).reshape(-1, *images.shape[1:])
    rows = images.shape[0]
    vctx = linear(pl.proj, pl.ctx).reshape(sets, pl.ctx.shape[-2], -1).repeat(rows // sets, 1, 1)
    n = vctx.shape[1]
    x = v.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([v.class_embedding.expand(rows, 1, -1), x], dim=1) + v.positional_embedding
    x = v.ln_pre(torch.cat([x, vctx.to(x.dtype)], dim=1))
    for i, block in enumerate(v.transformer.resblocks):
        if 1 <= i <= len(pl.compound_prompts_text):
            f, p = pl.compound_prompt_projections[i - 1], pl.compound_prompts_text[i - 1]
            deep = linear(f, p).reshape(sets, n, -1).repeat(rows // sets, 1, 1)
            x = torch.cat([x[:, :-n], deep.to(x.dtype)], dim=1)
        x = block(x)
    return v.ln_post(x) @ v.proj


def _uniform_call(cost, eps, max_iter, thresh):
    """One upstream Sinkhorn call on ``cost [k, m, n]`` with uniform marginals."""
    u = torch.full(cost.shape[:-1], 1.0 / cost.shape[-2], dtype=cost.dtype, device=cost.device)
    v = torch.full((*cost.shape[:-2], cost.shape[-1]), 1.0 / cost.shape[-1], dtype=cost.dtype, device=cost.device)
    return upstream_sinkhorn(torch.exp(-cost / eps), u, v, max_iter, thresh)


def _per_prompt_call(xb, sets_tokens, term_kind, eps, max_iter, thresh):
    """``TOKEN_SLICE per_prompt``: one call over the M*N problems of a pair whose text sets differ in length per
    prompt, padded to the longest with zero-mass columns (the stop test's mean is over the rows)."""
    M, P = xb.shape[:2]
    N, L = len(sets_tokens), max(t.shape[0] for t in sets_tokens)
    sims = torch.zeros(M, N, P, L, dtype=xb.dtype, device=xb.device)
    mass = torch.zeros(M, N, L, dtype=xb.dtype, device=xb.device)
    for k, t in enumerate(sets_tokens):
        sims[:, k, :, :t.shape[0]] = torch.einsum("vnd,ld->vnl", xb, t)
        mass[:, k, :t.shape[0]] = 1.0 / t.shape[0]
    K = (torch.exp(-(1 - sims) / eps) * (mass[:, :, None, :] > 0)).view(-1, P, L)
    r, c, v = torch.ones(M * N, P, dtype=xb.dtype), torch.ones(M * N, L, dtype=xb.dtype), mass.view(-1, L)
    for _ in range(max_iter):
        r0 = r
        r = (1.0 / P) / (K @ c[..., None])[..., 0]
        c = v / ((K.transpose(1, 2) @ r[..., None])[..., 0] + (v == 0))
        if (r - r0).abs().mean().item() < thresh:
            break
    T = (r[:, :, None] * K * c[:, None, :]).view(M, N, P, L)
    return (T * (sims if term_kind == "similarity" else 1 - sims)).sum((-1, -2))


@torch.no_grad()
def align_reference(m, pl, classnames, images, sets=None, *, eps=0.1, max_iter=100, thresh=1e-2,
                    hierarchical=True, token_term="similarity", cost_form="additive", beta=1.0, logits="global",
                    token_slice="prompt0_eot", stats=None):
    """Logits ``[B, C]`` of upstream ``CustomCLIP.forward`` (HIERARCHICAL path as coded) for ``images``.
    ``stats`` (a set, optional) receives the token-set lengths."""
    sets = sets or (pl.ctx.shape[0] if pl.ctx.dim() == 3 else 1)
    B = images.shape[0]
    text, tokens = text_tokens(m, pl, classnames, sets)
    C = text.shape[0] // sets
    h = unit(text[torch.arange(text.shape[0]), tokens.argmax(-1)]).view(C, sets, -1)
    img = unit(image_tokens(m, pl, images, sets)).view(B, sets, -1, text.shape[-1])
    z, x = img[:, :, 0], img[:, :, 1:]
    s_g = torch.einsum("bvd,ntd->bnvt", z, h).reshape(B * C, sets, sets)
    cost = 1 - s_g
    if hierarchical:
        text, tokens = text.view(C, sets, 77, -1), tokens.view(C, sets, 77)
        low = []
        for b, c in itertools.product(range(B), range(C)):
            if token_slice == "prompt0_eot":
                cls = unit(text[c, :, :tokens[c, 0].argmax() - 1])
                if stats is not None:
                    stats.add(cls.shape[1])
                sim = torch.einsum("vnd,tld->vtnl", x[b], cls).contiguous().view(sets * sets, x.shape[2], -1)
                T = _uniform_call(1 - sim, eps, max_iter, thresh)
                low.append((T * (sim if token_term == "similarity" else 1 - sim)).sum((1, 2)).view(sets, sets))
            else:
                cls = [unit(text[c, k, :tokens[c, k].argmax() - 1]) for k in range(sets)]
                low.append(_per_prompt_call(x[b], cls, token_term, eps, max_iter, thresh))
        low = torch.stack(low)
        cost = (1 - beta) * cost + beta * low if cost_form == "convex" else cost + beta * low
    T = _uniform_call(cost, eps, max_iter, thresh)
    score = (T * s_g).sum((1, 2)) if logits == "global" else 1 - (T * cost).sum((1, 2))
    return m.logit_scale.exp() * score.view(B, C)
