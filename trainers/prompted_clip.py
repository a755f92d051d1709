"""Prompted CLIP encoders and prompt learners shared by every prompt-learning trainer.

One CLIP instance serves both the prompted and the frozen (zero-shot) path: calling an encoder with
``prompts=None`` runs plain CLIP, so no second copy of the image encoder is kept in memory.

Shapes: B images, C classes, L = 77 text tokens, D_t text width, W vision width, E embedding dim,
N = 1 + number of patches.

Deep prompting (IVLP / PromptSRC / Prompt-OT, promptot.md §2.3):
* text: positions ``1 .. n_ctx`` (after SOS) hold the layer-0 context; in blocks ``1 .. depth-1`` those
  positions are *replaced* by that layer's prompt;
* vision: ``n_ctx_v`` tokens are appended after CLS + patches (after the positional embedding, before
  ``ln_pre``); in blocks ``1 .. depth-1`` the last ``n_ctx_v`` tokens are *replaced* by that layer's prompt.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from open_clip.transformer import VisionTransformer

import clip

PROMPT_INIT_STD = 0.02


def _project(x: torch.Tensor, proj) -> torch.Tensor:
    """``x @ proj`` for a projection stored as a matrix or as an ``nn.Linear``."""
    if proj is None:
        return x
    if isinstance(proj, nn.Linear):
        return proj(x)
    return x @ proj


def _run_blocks(transformer, x, attn_mask=None, replace=None):
    """Run ``transformer.resblocks`` on batch-first ``x [B, N, width]``.

    ``replace(i, x) -> x`` is called before block ``i`` (deep prompt replacement).
    """
    if not getattr(transformer, "batch_first", True):
        x = x.transpose(0, 1)
    for i, block in enumerate(transformer.resblocks):
        if replace is not None:
            if not getattr(transformer, "batch_first", True):
                x = replace(i, x.transpose(0, 1)).transpose(0, 1)
            else:
                x = replace(i, x)
        x = block(x, attn_mask=attn_mask)
    if not getattr(transformer, "batch_first", True):
        x = x.transpose(0, 1)
    return x


class TextEncoder(nn.Module):
    """CLIP's text tower fed with token *embeddings* (so context vectors can be learned)."""

    def __init__(self, clip_model):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.register_buffer("attn_mask", clip_model.attn_mask, persistent=False)

    def forward(self, prompts: torch.Tensor, tokenized: torch.Tensor,
                deep_prompts: Optional[Sequence[torch.Tensor]] = None, return_tokens: bool = False):
        """``prompts [C, L, D_t]`` (embeddings incl. SOS/EOT), ``tokenized [C, L]`` (locates EOT),
        ``deep_prompts``: one ``[n_ctx, D_t]`` per block ``1 .. len``. Returns ``[C, E]``
        (and the projected tokens ``[C, L, E]`` with ``return_tokens``)."""
        dtype = self.transformer.get_cast_dtype()  # dtype of the block weights (fp16 / bf16 / fp32)
        x = (prompts + self.positional_embedding.to(prompts.dtype)).to(dtype)
        replace = None
        if deep_prompts:
            n_ctx = deep_prompts[0].shape[0]

            def replace(i, h):
                if 1 <= i <= len(deep_prompts):
                    ctx = deep_prompts[i - 1].to(h.dtype).unsqueeze(0).expand(h.shape[0], -1, -1)
                    h = torch.cat([h[:, :1], ctx, h[:, 1 + n_ctx:]], dim=1)
                return h

        mask = self.attn_mask.to(x.dtype) if self.attn_mask is not None else None
        x = _run_blocks(self.transformer, x, attn_mask=mask, replace=replace)
        x = self.ln_final(x)
        eot = x[torch.arange(x.shape[0], device=x.device), tokenized.argmax(dim=-1)]
        features = _project(eot, self.text_projection)
        if return_tokens:
            return features, _project(x, self.text_projection)
        return features


class ImageEncoder(nn.Module):
    """CLIP's image tower with optional deep vision prompts (ViT); ResNets run unprompted."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    @property
    def is_vit(self) -> bool:
        return isinstance(self.visual, VisionTransformer)

    def forward(self, images: torch.Tensor, prompts: Optional[torch.Tensor] = None,
                deep_prompts: Optional[Sequence[torch.Tensor]] = None, return_tokens: bool = False):
        """``images [B, 3, H, W]``; ``prompts [n_v, W]`` appended at the input; ``deep_prompts`` one
        ``[n_v, W]`` per block ``1 .. len``. Returns ``[B, E]`` (and the projected patch tokens
        ``[B, N-1, E]`` with ``return_tokens``; prompt tokens are dropped)."""
        v = self.visual
        if not self.is_vit:
            if prompts is not None or return_tokens:
                raise ValueError("Vision prompts and token outputs need a ViT backbone (got a ResNet)")
            return v(images.type(v.conv1.weight.dtype))
        x = v.conv1(images.type(v.conv1.weight.dtype))  # [B, W, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, g*g, W]
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)  # [B, N, W]
        n_tokens = x.shape[1]
        if prompts is not None:
            x = torch.cat([x, prompts.to(x.dtype).unsqueeze(0).expand(x.shape[0], -1, -1)], dim=1)
        x = v.ln_pre(x)
        replace = None
        if deep_prompts:
            def replace(i, h):
                if 1 <= i <= len(deep_prompts):
                    ctx = deep_prompts[i - 1].to(h.dtype).unsqueeze(0).expand(h.shape[0], -1, -1)
                    h = torch.cat([h[:, :n_tokens], ctx], dim=1)
                return h

        x = _run_blocks(v.transformer, x, replace=replace)
        x = v.ln_post(x)
        features = _project(x[:, 0], v.proj)
        if return_tokens:
            return features, _project(x[:, 1:n_tokens], v.proj)
        return features


class ClassPrompts(nn.Module):
    """CoOp-style class prompts ``[SOS][ctx_1..ctx_n][class tokens].[EOT][pad]`` with learnable ctx.

    With ``use_init``, ``ctx_init`` (e.g. "a photo of a") initialises ctx from its token embeddings and
    sets ``n_ctx`` to its word count (CoOp); otherwise ctx ~ N(0, 0.02) with "X X .. X" placeholders.
    ``csc``: one context per class (CoOp's class-specific context).
    ``position``: where the class tokens go relative to ctx: ``end`` | ``middle`` | ``front``.
    """

    def __init__(self, clip_model, classnames, n_ctx: int, ctx_init: str = "", use_init: bool = True,
                 csc: bool = False, position: str = "end"):
        super().__init__()
        if position not in ("end", "middle", "front"):
            raise ValueError(f"CLASS_TOKEN_POSITION must be end, middle or front, got '{position}'")
        if position != "end" and (ctx_init and use_init):
            raise ValueError("CLASS_TOKEN_POSITION middle/front needs a random context (CTX_INIT \"\")")
        embedding = clip_model.token_embedding
        device = embedding.weight.device
        ctx_init = ctx_init.replace("_", " ").strip()
        if ctx_init and use_init:
            n_ctx = len(ctx_init.split(" "))
            tokens = clip.tokenize(ctx_init).to(device)
            with torch.no_grad():
                init = embedding(tokens)[0, 1:1 + n_ctx].float()
            if csc:
                init = init.unsqueeze(0).repeat(len(classnames), 1, 1)
            prompt_prefix = ctx_init
        else:
            shape = (len(classnames), n_ctx, embedding.weight.shape[1]) if csc else (n_ctx, embedding.weight.shape[1])
            init = torch.empty(shape).normal_(std=PROMPT_INIT_STD)
            prompt_prefix = " ".join(["X"] * n_ctx)
        self.ctx = nn.Parameter(init)  # fp32 master weights whatever CLIP's precision
        self.n_ctx = n_ctx
        self.n_cls = len(classnames)
        self.position = position
        self.prompt_prefix = prompt_prefix
        names = [c.replace("_", " ") for c in classnames]
        self.name_lens = [len(clip.tokenize(n)[0].nonzero()) - 2 for n in names]
        texts = [f"{prompt_prefix} {n}." for n in names]
        tokenized = clip.tokenize(texts).to(device)
        with torch.no_grad():
            emb = embedding(tokenized)
        self.register_buffer("tokenized_prompts", tokenized, persistent=False)
        self.register_buffer("token_prefix", emb[:, :1], persistent=False)  # SOS
        self.register_buffer("token_suffix", emb[:, 1 + n_ctx:], persistent=False)  # class, ".", EOT, pad

    def forward(self) -> torch.Tensor:
        """``[C, L, D_t]`` prompt embeddings in the token embedding's dtype."""
        dtype = self.token_prefix.dtype
        ctx = self.ctx.to(dtype)
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(self.n_cls, -1, -1)
        prefix, suffix = self.token_prefix, self.token_suffix
        if self.position == "end":
            return torch.cat([prefix, ctx, suffix], dim=1)
        rows = []
        for i, n in enumerate(self.name_lens):
            name, rest = suffix[i:i + 1, :n], suffix[i:i + 1, n:]
            if self.position == "front":
                rows.append(torch.cat([prefix[i:i + 1], name, ctx[i:i + 1], rest], dim=1))
            else:
                half = self.n_ctx // 2
                rows.append(torch.cat([prefix[i:i + 1], ctx[i:i + 1, :half], name, ctx[i:i + 1, half:], rest], dim=1))
        return torch.cat(rows, dim=0)


def _deep_prompts(depth: int, n_ctx: int, width: int) -> nn.ParameterList:
    """``depth - 1`` prompts ``[n_ctx, width]`` ~ N(0, 0.02) for blocks ``1 .. depth-1``."""
    return nn.ParameterList(
        [nn.Parameter(torch.empty(n_ctx, width).normal_(std=PROMPT_INIT_STD)) for _ in range(max(depth - 1, 0))]
    )


def _clamp_depth(key: str, depth: int, n_layers: int) -> int:
    """A depth beyond the backbone's layers would create prompts no block reads: clamp it (with a note)."""
    if depth > n_layers:
        print(f"Note: {key} {depth} > the backbone's {n_layers} layers; using {n_layers}")
        return n_layers
    return depth


class VLPromptLearner(nn.Module):
    """Independent vision-language deep prompts (IVLP): text ctx + deep text prompts, vision prompts +
    deep vision prompts. Upstream rule: ``CTX_INIT`` is used only when ``n_ctx_text <= 4``."""

    def __init__(self, clip_model, classnames, n_ctx_text: int, n_ctx_vision: int, ctx_init: str,
                 depth_text: int, depth_vision: int):
        super().__init__()
        depth_text = _clamp_depth("PROMPT_DEPTH_TEXT", depth_text, len(clip_model.transformer.resblocks))
        if hasattr(clip_model.visual, "transformer"):
            depth_vision = _clamp_depth("PROMPT_DEPTH_VISION", depth_vision,
                                        len(clip_model.visual.transformer.resblocks))
        use_init = bool(ctx_init) and n_ctx_text <= 4
        if use_init and len(ctx_init.replace("_", " ").split(" ")) != n_ctx_text:
            raise ValueError(f"CTX_INIT '{ctx_init}' has {len(ctx_init.split(' '))} words but N_CTX_TEXT is "
                             f"{n_ctx_text}; make them equal")
        self.text = ClassPrompts(clip_model, classnames, n_ctx_text, ctx_init, use_init=use_init)
        text_width = clip_model.ln_final.weight.shape[0]
        self.text_deep = _deep_prompts(depth_text, n_ctx_text, text_width)
        if depth_vision >= 1 and n_ctx_vision > 0:
            width = clip_model.visual.conv1.out_channels
            self.vision_ctx = nn.Parameter(torch.empty(n_ctx_vision, width).normal_(std=PROMPT_INIT_STD))
            self.vision_deep = _deep_prompts(depth_vision, n_ctx_vision, width)
        else:
            self.vision_ctx = None
            self.vision_deep = nn.ParameterList()

    @property
    def tokenized_prompts(self):
        return self.text.tokenized_prompts


# Upstream (PromptSRC / Prompt-OT) parameter names -> ours, for loading their full-state checkpoints.
UPSTREAM_KEY_MAP = [
    (r"^prompt_learner\.ctx$", "prompt_learner.text.ctx"),
    (r"^image_encoder\.VPT$", "prompt_learner.vision_ctx"),
    (r"^image_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow$", "prompt_learner.vision_deep.{i}"),
    (r"^text_encoder\.transformer\.resblocks\.(\d+)\.VPT_shallow$", "prompt_learner.text_deep.{i}"),
]


def map_upstream_state_dict(state_dict: dict) -> dict:
    """Rename the learnable tensors of an upstream IVLP/PromptSRC/Prompt-OT checkpoint to our names
    (layer ``i`` of upstream = deep prompt ``i - 1`` here); everything else (frozen CLIP) is dropped."""
    import re

    out = {}
    for key, value in state_dict.items():
        for pattern, target in UPSTREAM_KEY_MAP:
            m = re.match(pattern, key)
            if m:
                out[target.format(i=int(m.group(1)) - 1) if m.groups() else target] = value
                break
    return out


class PromptedCLIP(nn.Module):
    """``CustomCLIP``: a prompt learner plus CLIP's two towers (shared with the frozen path).

    ``forward(images) -> logits [B, C]``; the pieces the trainers' losses need are exposed as methods.
    """

    def __init__(self, clip_model, prompt_learner: nn.Module):
        super().__init__()
        self.prompt_learner = prompt_learner
        self.image_encoder = ImageEncoder(clip_model.visual)
        self.text_encoder = TextEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.token_embedding = clip_model.token_embedding
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith("prompt_learner."))

    @property
    def dtype(self):
        return self.image_encoder.visual.conv1.weight.dtype

    def text_features(self) -> torch.Tensor:
        """Prompted text features of every class, ``[C, E]``."""
        pl = self.prompt_learner
        text = getattr(pl, "text", pl)
        deep = list(pl.text_deep) if hasattr(pl, "text_deep") else None
        return self.text_encoder(text(), text.tokenized_prompts, deep_prompts=deep)

    def image_features(self, images: torch.Tensor, return_tokens: bool = False):
        """Prompted image features ``[B, E]`` (plain CLIP when the learner has no vision prompts)."""
        pl = self.prompt_learner
        vctx = getattr(pl, "vision_ctx", None)
        deep = list(pl.vision_deep) if vctx is not None else None
        return self.image_encoder(images, prompts=vctx, deep_prompts=deep, return_tokens=return_tokens)

    @torch.no_grad()
    def frozen_image_features(self, images: torch.Tensor, return_tokens: bool = False):
        """Zero-shot CLIP image features ``[B, E]``: the same encoder run without prompts."""
        return self.image_encoder(images, return_tokens=return_tokens)

    @torch.no_grad()
    def frozen_text_features(self, classnames, templates) -> torch.Tensor:
        """Zero-shot text features ``[C, E]``: per template normalised, averaged, renormalised."""
        device = self.token_embedding.weight.device
        feats = []
        for template in templates:
            tokens = clip.tokenize([template.format(c.replace("_", " ")) for c in classnames]).to(device)
            emb = self.token_embedding(tokens)
            f = self.text_encoder(emb, tokens).float()
            feats.append(f / f.norm(dim=-1, keepdim=True))
        mean = torch.stack(feats).mean(0)
        return mean / mean.norm(dim=-1, keepdim=True)

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """``exp(logit_scale) * cos(image, text)``: ``[B, E] x [C, E] -> [B, C]``."""
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        return self.logit_scale.exp().to(image_features.dtype) * image_features @ text_features.t()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logits(self.image_features(images), self.text_features())

    def trainable_state_dict(self) -> dict:
        """Only the learnable tensors (what checkpoints store; frozen CLIP is rebuilt from its weights)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in names}

    def load_trainable_state_dict(self, state_dict: dict, source: str = "checkpoint"):
        """Load learnable tensors from ours or from an upstream full-state checkpoint.

        Class-specific buffers are never loaded (they are rebuilt for the evaluated classes).
        Raises ``KeyError`` naming the missing learnable tensors.
        """
        expected = set(self.trainable_state_dict())
        sd = {k: v for k, v in state_dict.items() if k in expected}
        if not sd or len(sd) < len(expected):
            mapped = map_upstream_state_dict(state_dict)
            if len(mapped) > len(sd):
                sd = mapped
        missing = expected - set(sd)
        if missing:
            raise KeyError(f"{source} lacks learnable tensors {sorted(missing)[:5]}"
                           f"{' ...' if len(missing) > 5 else ''}: was it trained with another trainer or "
                           "prompt configuration (N_CTX / PROMPT_DEPTH)?")
        own = self.state_dict()
        for k, v in sd.items():
            if own[k].shape != v.shape:
                raise ValueError(f"{source}: '{k}' has shape {tuple(v.shape)}, the model expects "
                                 f"{tuple(own[k].shape)} (different N_CTX, depth or backbone?)")
        self.load_state_dict(sd, strict=False)
