"""CLIP's two towers, driven by a :class:`~trainers.prompts.Prompts` (the prompted encoders).

Deep prompting as in IVLP / PromptSRC / MaPLe (``clip/model.py`` of PromptSRC and of MaPLe):
* text: positions ``1 .. n_ctx`` (after SOS) hold the layer-0 context; in blocks ``1 .. k`` those positions are
  *replaced* by that block's prompt;
* vision: ``n_v`` prompt tokens are appended after CLS + patches (after the positional embedding, before
  ``ln_pre``); in blocks ``1 .. k`` the last ``n_v`` tokens are *replaced* by that block's prompt.

open_clip's ``set_grad_checkpointing()`` is honoured by the block loop. Only class-token pooling is supported
(what CLIP and every method here read); other poolings stop with an error naming the model.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from open_clip.transformer import VisionTransformer
from torch.utils.checkpoint import checkpoint

from .prompts import Prompts


def check_backbone(clip_model, name: str = "the backbone"):
    """Stop with a clear error when ``clip_model`` pools otherwise than the prompted encoders read it."""
    visual = clip_model.visual
    if isinstance(visual, VisionTransformer):
        problems = []
        if getattr(visual, "attn_pool", None) is not None:
            problems.append("an attention pooler (attn_pool)")
        if getattr(visual, "pool_type", "tok") != "tok":
            problems.append(f"pool_type '{visual.pool_type}'")
        if not isinstance(getattr(visual, "patch_dropout", nn.Identity()), nn.Identity):
            problems.append("patch dropout")
        if problems:
            raise ValueError(f"MODEL.BACKBONE.NAME {name}: its vision tower uses {' and '.join(problems)}; the "
                             "prompted encoders read the class token (OpenAI CLIP ViTs). Use such a backbone.")
    if getattr(clip_model, "text_pool_type", "argmax") != "argmax":
        raise ValueError(f"MODEL.BACKBONE.NAME {name}: its text tower pools '{clip_model.text_pool_type}', the "
                         "prompted encoders read the EOT token (argmax pooling, OpenAI CLIP). Use such a backbone.")


def _project(x: torch.Tensor, proj) -> torch.Tensor:
    """``x @ proj`` for a projection stored as a matrix or as an ``nn.Linear``."""
    if proj is None:
        return x
    if isinstance(proj, nn.Linear):
        return proj(x)
    return x @ proj


def _rows(prompt: torch.Tensor, rows: int, dtype) -> torch.Tensor:
    """A prompt ``[n, d]`` (all rows) or ``[S, n, d]`` (row r uses set ``r % S``) as ``[rows, n, d]``."""
    prompt = prompt.to(dtype)
    if prompt.dim() == 2:
        return prompt.unsqueeze(0).expand(rows, -1, -1)
    return prompt.repeat(rows // prompt.shape[0], 1, 1)


def run_blocks(transformer, x: torch.Tensor, attn_mask=None, replace=None, start: int = 0,
               stop: Optional[int] = None) -> torch.Tensor:
    """Blocks ``start .. stop-1`` of ``transformer.resblocks`` on batch-first ``x [R, N, width]``.

    ``replace(i, x) -> x`` runs before block ``i`` (deep prompt replacement). With open_clip's
    ``grad_checkpointing`` set (``model.set_grad_checkpointing()``) each block is checkpointed while gradients
    are recorded; a set ``transformer.checkpoint_blocks`` (see :func:`checkpoint_segments`) restricts that to
    the blocks it holds.
    """
    batch_first = getattr(transformer, "batch_first", True)
    ckpt = getattr(transformer, "grad_checkpointing", False) and torch.is_grad_enabled()
    only = getattr(transformer, "checkpoint_blocks", None)
    blocks = transformer.resblocks
    stop = len(blocks) if stop is None else stop
    for i in range(start, stop):
        if replace is not None:
            x = replace(i, x)
        h = x if batch_first else x.transpose(0, 1)
        if ckpt and (only is None or i in only):
            h = checkpoint(blocks[i], h, None, None, attn_mask, use_reentrant=False)
        else:
            h = blocks[i](h, attn_mask=attn_mask)
        x = h if batch_first else h.transpose(0, 1)
    return x


def checkpoint_segments(transformer, segments: int):
    """Gradient checkpointing of the blocks ``i`` with ``i % (n_blocks // segments) == 0`` (GalLoP / SOT-GLP
    ``models/prompted_transformers.py``, ``--checkpointing_segments``); 0 turns it off."""
    n = len(transformer.resblocks)
    if segments < 0:
        raise ValueError(f"checkpointing segments must be >= 0, got {segments}")
    transformer.grad_checkpointing = segments > 0
    step = max(n // segments, 1) if segments > 0 else 1
    transformer.checkpoint_blocks = frozenset(i for i in range(n) if i % step == 0) if segments > 0 else None


class TextEncoder(nn.Module):
    """CLIP's text tower fed with token *embeddings* (so context vectors can be learned)."""

    def __init__(self, clip_model):
        super().__init__()
        self.transformer = clip_model.transformer
        self.positional_embedding = clip_model.positional_embedding
        self.ln_final = clip_model.ln_final
        self.text_projection = clip_model.text_projection
        self.register_buffer("attn_mask", clip_model.attn_mask, persistent=False)

    def forward(self, embeddings: torch.Tensor, eot: torch.Tensor, deep: Sequence[torch.Tensor] = (),
                n_ctx: int = 0, return_tokens: bool = False):
        """``embeddings [R, L', D_t]`` (SOS .. EOT, ``L' <= 77``), ``eot [R]`` (EOT positions), ``deep``: one
        ``[n_ctx, D_t]`` or ``[S, n_ctx, D_t]`` per block ``1 .. len`` replacing positions ``1 .. n_ctx``.
        Returns ``[R, E]`` (and the projected tokens ``[R, L', E]`` with ``return_tokens``)."""
        dtype = self.transformer.get_cast_dtype()  # dtype of the block weights (fp16 / bf16 / fp32)
        length = embeddings.shape[1]
        x = (embeddings + self.positional_embedding[:length].to(embeddings.dtype)).to(dtype)
        replace = None
        if deep:
            rows = x.shape[0]

            def replace(i, h):
                if 1 <= i <= len(deep):
                    h = torch.cat([h[:, :1], _rows(deep[i - 1], rows, h.dtype), h[:, 1 + n_ctx:]], dim=1)
                return h

        mask = self.attn_mask[:length, :length].to(x.dtype) if self.attn_mask is not None else None
        x = run_blocks(self.transformer, x, attn_mask=mask, replace=replace)
        if return_tokens:
            x = self.ln_final(x)
            tokens = _project(x, self.text_projection)
            return tokens[torch.arange(x.shape[0], device=x.device), eot], tokens
        eot_x = self.ln_final(x[torch.arange(x.shape[0], device=x.device), eot])
        return _project(eot_x, self.text_projection)


class ImageEncoder(nn.Module):
    """CLIP's image tower in three stages, each callable on its own: :meth:`embed` (patches, CLS, positions,
    prompt tokens, ``ln_pre``), :meth:`trunk` (the blocks, with deep-prompt replacement) and :meth:`head`
    (``ln_post`` + ``proj``). A method can so replace the trunk's last blocks or read the tokens.
    ResNets run unprompted only."""

    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    @property
    def is_vit(self) -> bool:
        return isinstance(self.visual, VisionTransformer)

    def embed(self, images: torch.Tensor, ctx: Optional[torch.Tensor] = None, sets: int = 1):
        """``images [B, 3, H, W]`` -> ``x [B*S, N + n_v, W]`` (row ``b*S + s`` = image b with set s's prompts
        ``ctx [S, n_v, W]``; ``ctx [n_v, W]`` for every row) and ``N`` (CLS + patches)."""
        v = self.visual
        x = v.conv1(images.type(v.conv1.weight.dtype))  # [B, W, g, g]
        x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)  # [B, g*g, W]
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)  # [B, N, W]
        n_tokens = x.shape[1]
        if sets > 1:
            x = x.repeat_interleave(sets, dim=0)
        if ctx is not None:
            x = torch.cat([x, _rows(ctx, x.shape[0], x.dtype)], dim=1)
        return v.ln_pre(x), n_tokens

    def trunk(self, x: torch.Tensor, n_tokens: int, deep: Sequence[torch.Tensor] = (), start: int = 0,
              stop: Optional[int] = None) -> torch.Tensor:
        """Blocks ``start .. stop-1`` on ``x [R, N + n_v, W]``; ``deep``: one ``[n_v, W]`` or ``[S, n_v, W]``
        per block ``1 .. len`` replacing the tokens after the first ``n_tokens``."""
        replace = None
        if deep:
            rows = x.shape[0]

            def replace(i, h):
                if 1 <= i <= len(deep):
                    h = torch.cat([h[:, :n_tokens], _rows(deep[i - 1], rows, h.dtype)], dim=1)
                return h

        return run_blocks(self.visual.transformer, x, replace=replace, start=start, stop=stop)

    def head(self, x: torch.Tensor, n_tokens: int, tokens: Optional[str] = None):
        """Class-token feature ``[R, E]``; with ``tokens="patches"`` also the projected patch tokens
        ``[R, N-1, E]``, with ``tokens="all"`` the patch and prompt tokens ``[R, N-1+n_v, E]``."""
        v = self.visual
        if tokens is None:
            return _project(v.ln_post(x[:, 0]), v.proj)
        x = _project(v.ln_post(x), v.proj)
        return x[:, 0], (x[:, 1:n_tokens] if tokens == "patches" else x[:, 1:])

    def forward(self, images: torch.Tensor, prompts: Optional[Prompts] = None, tokens: Optional[str] = None):
        """``images [B, 3, H, W]`` -> ``[B, E]`` (``[B*S, E]`` with S prompt sets; plus tokens, see :meth:`head`).
        ``prompts=None``: plain CLIP."""
        v = self.visual
        ctx = prompts.vision_ctx if prompts is not None else None
        if not self.is_vit:
            if ctx is not None or tokens:
                raise ValueError("Vision prompts and token outputs need a ViT backbone (got a ResNet)")
            return v(images.type(v.conv1.weight.dtype))
        sets = prompts.sets if prompts is not None and ctx is not None else 1
        x, n_tokens = self.embed(images, ctx, sets)
        x = self.trunk(x, n_tokens, prompts.vision_deep if ctx is not None else ())
        return self.head(x, n_tokens, tokens)
