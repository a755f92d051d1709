"""``PromptedCLIP``: a prompt learner plus CLIP's two towers, shared by every prompt-learning trainer.

One CLIP instance serves both the prompted and the frozen (zero-shot) path: encoding with ``prompts=None``
runs plain CLIP, so no second copy of the image encoder is kept in memory.

Shapes: B images, C classes, S prompt sets, E embedding dim.
"""
import re
from typing import Optional, Sequence

import torch
import torch.nn as nn

import clip

from .encoders import ImageEncoder, TextEncoder, check_backbone
from .prompts import PromptLearner, Prompts

#: Default number of template prompts per text-encoder call when the frozen targets are encoded.
FROZEN_TEXT_CHUNK = 1024


def normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def map_state_dict(state_dict: dict, key_map) -> dict:
    """Rename tensors with ``key_map`` ``[(regex, target)]``; a target's ``{i}`` is the regex's layer number
    minus one (upstream layer ``i`` = our deep prompt ``i - 1``). Unmatched tensors are dropped."""
    out = {}
    for key, value in state_dict.items():
        for pattern, target in key_map:
            m = re.match(pattern, key)
            if m:
                out[target.format(i=int(m.group(1)) - 1) if m.groups() else target] = value
                break
    return out


class PromptedCLIP(nn.Module):
    """``CustomCLIP``: ``forward(images) -> logits [B, C]``; the pieces the losses need are methods."""

    def __init__(self, clip_model, prompt_learner: PromptLearner, backbone_name: str = "the backbone"):
        super().__init__()
        if not isinstance(prompt_learner, PromptLearner):
            raise TypeError(f"{type(prompt_learner).__name__} is not a PromptLearner")
        check_backbone(clip_model, backbone_name)
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

    # ------------------------------------------------------------------------------------ encoders
    def encode_text(self, prompts: Prompts, class_chunk: int = 0):
        """Prompted text features: ``[C, E]``, ``[C, S, E]`` with sets, ``[B, C, E]`` per image; with
        ``prompts.token_outputs`` also the tokens ``[..., L', E]``. ``class_chunk > 0`` encodes that many
        classes per call (bounded memory for per-image prompts)."""
        ct = prompts.class_tokens
        chunk = class_chunk if class_chunk > 0 else ct.n_cls
        outs = [self._encode_classes(prompts, slice(c, c + chunk)) for c in range(0, ct.n_cls, chunk)]
        if prompts.token_outputs:  # token sets differ in length per chunk: a list per chunk
            return torch.cat([o[0] for o in outs], dim=-2 if prompts.sets == 1 else -3), [o[1] for o in outs]
        return torch.cat(outs, dim=-2 if prompts.sets == 1 else -3)

    def _encode_classes(self, prompts: Prompts, classes: slice):
        emb, eot = prompts.class_tokens.embed(prompts, classes)  # [*lead, c, S, L', D], [*lead, c, S]
        lead = emb.shape[:-2] if prompts.sets > 1 else emb.shape[:-3]
        out = self.text_encoder(emb.reshape(-1, *emb.shape[-2:]), eot.reshape(-1), prompts.text_deep,
                                prompts.class_tokens.n_ctx, return_tokens=prompts.token_outputs)
        if prompts.token_outputs:
            return out[0].view(*lead, -1), out[1].view(*lead, *out[1].shape[-2:])
        return out.view(*lead, -1)

    def encode_image(self, images: torch.Tensor, prompts: Optional[Prompts] = None, tokens: Optional[str] = None):
        """``[B, E]`` (``[B, S, E]`` with prompt sets); plain CLIP with ``prompts=None``; tokens: see
        :meth:`ImageEncoder.head`."""
        out = self.image_encoder(images, prompts, tokens=tokens)
        sets = prompts.sets if prompts is not None and prompts.vision_ctx is not None else 1
        if sets == 1:
            return out
        if tokens:
            return out[0].view(images.shape[0], sets, -1), out[1].view(images.shape[0], sets, *out[1].shape[1:])
        return out.view(images.shape[0], sets, -1)

    def class_encodings(self, prompts: Prompts):
        """What ``forward(images, text_features=...)`` needs of the class prompts (encoded once per evaluation):
        here the text features ``[C, E]``."""
        return self.encode_text(prompts)

    # ------------------------------------------------------------------------------- convenience
    def text_features(self) -> torch.Tensor:
        """Prompted text features of every class, ``[C, E]`` (learners whose prompts ignore the image)."""
        return self.encode_text(self.prompt_learner())

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Prompted image features ``[B, E]`` (plain CLIP when the learner has no vision prompts)."""
        return self.encode_image(images, self.prompt_learner())

    @torch.no_grad()
    def frozen_image_features(self, images: torch.Tensor) -> torch.Tensor:
        """Zero-shot CLIP image features ``[B, E]``: the same encoder run without prompts."""
        return self.image_encoder(images)

    @torch.no_grad()
    def frozen_text_features(self, classnames: Sequence[str], templates: Sequence[str], mean: str = "raw",
                             chunk: int = FROZEN_TEXT_CHUNK) -> torch.Tensor:
        """Zero-shot text features ``[C, E]`` (normalised) from ``templates``, on the model's device.

        ``mean="raw"``: average the raw template features, then normalise (PromptSRC's ``fixed_embeddings``);
        ``"normalized"``: normalise each template's features first. All ``T x C`` prompts are encoded in
        chunks of ``chunk`` sequences of similar length, each cut after its longest EOT (the text tower is
        causal, so no feature changes)."""
        if mean not in ("raw", "normalized"):
            raise ValueError(f"frozen text mean must be 'raw' or 'normalized', got '{mean}'")
        device = self.token_embedding.weight.device
        names = [c.replace("_", " ") for c in classnames]
        tokens = clip.tokenize([t.format(n) for t in templates for n in names])  # template-major
        eot = tokens.argmax(dim=-1)
        order = eot.argsort()  # chunks of similar lengths: little padding
        feats = None
        for i in range(0, len(tokens), chunk):
            rows = order[i:i + chunk]
            length = int(eot[rows[-1]]) + 1
            f = self.text_encoder(self.token_embedding(tokens[rows, :length].to(device, non_blocking=True)),
                                  eot[rows].to(device, non_blocking=True)).float()
            if feats is None:
                feats = f.new_empty(len(tokens), f.shape[-1])
            feats[rows.to(device)] = f if mean == "raw" else normalize(f)
        feats = feats.view(len(templates), len(names), -1)
        return normalize(feats.mean(0))

    # ---------------------------------------------------------------------------------- logits
    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """``exp(logit_scale) * cos``: ``[B, E] x [C, E] -> [B, C]``; per-image text ``[B, C, E]`` gives row b
        from image b's class features."""
        image_features = normalize(image_features)
        text_features = normalize(text_features).to(image_features.dtype)
        scale = self.logit_scale.exp().to(image_features.dtype)
        if text_features.dim() == 3:
            return scale * torch.einsum("be,bce->bc", image_features, text_features)
        return scale * image_features @ text_features.t()

    def forward(self, images: torch.Tensor, text_features: Optional[torch.Tensor] = None,
                class_chunk: int = 0) -> torch.Tensor:
        """Logits ``[B, C]``. ``text_features``: precomputed class features (evaluation encodes them once);
        image-conditioned learners get the normalised frozen image features."""
        learner = self.prompt_learner
        if learner.image_conditioned:
            image = self.image_encoder(images)
            prompts = learner(normalize(image).float())
            return self.logits(image, self.encode_text(prompts, class_chunk))
        prompts = learner()
        if text_features is None:
            text_features = self.encode_text(prompts)
        return self.logits(self.encode_image(images, prompts), text_features)

    # ----------------------------------------------------------------------------- checkpoints
    def trainable_state_dict(self) -> dict:
        """Only the learnable tensors (what checkpoints store; frozen CLIP is rebuilt from its weights)."""
        names = {n for n, p in self.named_parameters() if p.requires_grad}
        return {k: v for k, v in self.state_dict().items() if k in names}

    def load_trainable_state_dict(self, state_dict: dict, source: str = "checkpoint"):
        """Load learnable tensors from ours or from an upstream full-state checkpoint (renamed with the
        learner's ``UPSTREAM_KEY_MAP``). Class-specific buffers are never loaded (they are rebuilt for the
        evaluated classes). Raises ``KeyError`` naming the missing learnable tensors."""
        expected = set(self.trainable_state_dict())
        sd = {k: v for k, v in state_dict.items() if k in expected}
        if len(sd) < len(expected):
            mapped = map_state_dict(state_dict, type(self.prompt_learner).UPSTREAM_KEY_MAP)
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
