"""The CLIP model class: open_clip's ``CLIP`` plus OpenAI CLIP's ``dtype`` property.

Attribute names are OpenAI's (``token_embedding``, ``positional_embedding``, ``transformer``,
``ln_final``, ``text_projection``, ``logit_scale``, ``visual.conv1``, ``visual.class_embedding``,
``visual.ln_pre``, ``visual.transformer``, ``visual.ln_post``, ``visual.proj``), so prompt learners can
reach every layer. open_clip's transformers are batch-first: token tensors are ``[B, L, D]``.
"""
import torch
from open_clip.model import CLIP as OpenClipCLIP


class CLIP(OpenClipCLIP):
    """open_clip's CLIP with OpenAI's ``dtype`` (the dtype of the weights, not of LayerNorm math)."""

    @property
    def dtype(self) -> torch.dtype:
        return self.visual.conv1.weight.dtype


def as_clip(model: OpenClipCLIP) -> CLIP:
    """Give an open_clip ``CLIP`` instance our class (it only adds properties; no state changes)."""
    if not isinstance(model, OpenClipCLIP):
        raise TypeError(f"Expected an open_clip CLIP model, got {type(model).__name__}")
    model.__class__ = CLIP
    return model
