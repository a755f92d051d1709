"""The prompt interface: what a prompt learner hands the prompted encoders, and the class prompts' fixed tokens.

A prompt learner is a ``PromptLearner`` whose ``forward(image_features=None)`` returns one :class:`Prompts`.
The encoders (``trainers/encoders.py``) read nothing else from the learner.

Shapes: C classes, S prompt sets, B images, n text context tokens, D_t text width, n_v vision prompt tokens,
W vision width, L = 77 text positions.

Text rows are ordered class-major (row ``c * S + s``: class c, prompt set s); image rows image-major
(row ``b * S + s``). A per-set tensor ``[S, ...]`` is therefore tiled over the rows: row r uses set ``r % S``.
This is the layout of ALIGN's released code (``trainers/mmp.py``: images repeated per visual prompt, the class
prompts listed "for each class, for each prompt").
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

import clip

PROMPT_INIT_STD = 0.02


@dataclass
class Prompts:
    """Everything the prompted encoders need for one forward pass.

    ``text_ctx``: the learnable context, one of
        ``[n, D_t]`` shared by all classes, ``[C, n, D_t]`` per class, ``[B, C, n, D_t]`` per image
        (``per_image=True``, CoCoOp); with ``sets = S > 1`` an extra set axis right before ``n``:
        ``[S, n, D_t]``, ``[C, S, n, D_t]``, ``[B, C, S, n, D_t]``.
    ``text_deep``: one tensor per text block ``1 .. len`` that *replaces* the context positions
        ``1 .. n`` at that block: ``[n, D_t]`` or ``[S, n, D_t]``.
    ``vision_ctx``: prompt tokens appended after CLS + patches at the input: ``[n_v, W]`` or ``[S, n_v, W]``.
    ``vision_deep``: one tensor per vision block ``1 .. len`` that replaces the prompt tokens there.
    ``class_tokens``: the fixed tokens the context is inserted into (``None``: no text prompts).
    ``token_outputs``: the encoders also return their projected token outputs.
    """

    class_tokens: Optional["ClassTokens"] = None
    text_ctx: Optional[torch.Tensor] = None
    text_deep: Sequence[torch.Tensor] = field(default_factory=tuple)
    vision_ctx: Optional[torch.Tensor] = None
    vision_deep: Sequence[torch.Tensor] = field(default_factory=tuple)
    sets: int = 1
    per_image: bool = False
    token_outputs: bool = False

    def __post_init__(self):
        if self.text_ctx is not None:
            extra = self.text_ctx.dim() - 2 - (self.sets > 1) - self.per_image
            if extra not in (0, 1):
                raise ValueError(f"text_ctx of shape {tuple(self.text_ctx.shape)} does not fit sets={self.sets}, "
                                 f"per_image={self.per_image} (see Prompts' docstring)")


class PromptLearner(nn.Module):
    """Base of every prompt learner: ``forward(image_features=None) -> Prompts``.

    ``image_conditioned``: the text prompts depend on the image (CoCoOp); the trainers then cannot encode the
    class prompts once per evaluation, and the model feeds the frozen image features to ``forward``.
    """

    image_conditioned = False
    #: ``[(regex, our name)]`` renaming an upstream full-state checkpoint's learnable tensors to ours
    UPSTREAM_KEY_MAP: Sequence[Tuple[str, str]] = ()

    def forward(self, image_features: Optional[torch.Tensor] = None) -> Prompts:
        raise NotImplementedError


def _tokens_of(text: str) -> int:
    """Number of BPE tokens of ``text`` (without SOS / EOT)."""
    return int((clip.tokenize(text)[0] != 0).sum()) - 2


def context_init(clip_model, ctx_init: str, n_ctx: int, rule: str) -> Tuple[Optional[torch.Tensor], str, int]:
    """Initial context ``[n, D_t]`` (or ``None``: random), the prompt text before the class name, and n.

    ``rule``:
      * ``"coop"`` (CoOp, CoCoOp): with ``ctx_init`` the context is its words' embeddings and ``n_ctx`` becomes
        their number (``N_CTX`` is ignored);
      * ``"first_n"`` (IVLP, PromptSRC, Prompt-OT, MaPLe, ALIGN): ``ctx_init`` is used when ``n_ctx <= 4``; the
        first ``n_ctx`` tokens become the learnable context and the rest of the sentence stays as fixed tokens
        (``N_CTX 2`` + ``"a photo of a"`` -> ``[SOS] [ctx: a photo] of a {class}.``).
    Without an init the context is ``N(0, 0.02)`` and the placeholder text is ``"X X .. X"``.
    """
    ctx_init = ctx_init.replace("_", " ").strip()
    use_init = bool(ctx_init) and (rule == "coop" or n_ctx <= 4)
    if not use_init:
        return None, " ".join(["X"] * n_ctx), n_ctx
    n_tokens = _tokens_of(ctx_init)
    if rule == "coop":
        n_ctx = len(ctx_init.split(" "))
    elif n_ctx > n_tokens:
        raise ValueError(f"CTX_INIT '{ctx_init}' has {n_tokens} tokens but N_CTX is {n_ctx}: the first N_CTX "
                         f"tokens become the learnable context, so use N_CTX <= {n_tokens} or a longer CTX_INIT")
    embedding = clip_model.token_embedding
    tokens = clip.tokenize(ctx_init).to(embedding.weight.device)
    with torch.no_grad():
        init = embedding(tokens)[0, 1:1 + n_ctx].float()
    return init, ctx_init, n_ctx


def random_prompts(n: int, width: int, count: int, sets: Optional[int] = None) -> nn.ParameterList:
    """``count`` prompts ``[n, width]`` (``[sets, n, width]`` when ``sets`` is given) ~ N(0, 0.02) (deep prompts
    of blocks ``1 .. count``)."""
    shape = (n, width) if sets is None else (sets, n, width)
    return nn.ParameterList([nn.Parameter(torch.empty(shape).normal_(std=PROMPT_INIT_STD)) for _ in range(count)])


def clamp_depth(key: str, depth: int, n_layers: int) -> int:
    """A depth beyond the backbone's layers would create prompts no block reads: clamp it (with a note)."""
    if depth > n_layers:
        print(f"Note: {key} {depth} > the backbone's {n_layers} layers; using {n_layers}")
        return n_layers
    return depth


class ClassTokens(nn.Module):
    """The fixed tokens of the class prompts, per (class, prompt set).

    Prompt set s of class c is the text ``template.format(prefix=prefixes[s], name=name_c)`` (default
    ``"{prefix} {name}."``); after SOS its first ``n_ctx`` tokens are the learnable context slots, the rest
    (e.g. "of a" of "a photo of a", the name, ".", EOT) stay fixed.
    ``position`` (CoOp's ``CLASS_TOKEN_POSITION``, one set only): ``end`` | ``middle`` | ``front``.

    Buffers (rebuilt for the classes at hand, never stored in checkpoints): ``prefix [C, S, 1, D_t]`` (SOS),
    ``suffix [C, S, L - 1 - n, D_t]``, ``eot [C, S]`` (EOT positions). With a single prefix (S = 1) the
    tokens are shared by every prompt set of a ``sets > 1`` context (expanded, not copied: SOT-GLP's
    C x (G + N) prompts of one class differ only in their context).
    """

    def __init__(self, clip_model, classnames: Sequence[str], prefixes: Sequence[str], n_ctx: int,
                 position: str = "end", template: str = "{prefix} {name}."):
        super().__init__()
        if position not in ("end", "middle", "front"):
            raise ValueError(f"CLASS_TOKEN_POSITION must be end, middle or front, got '{position}'")
        if position != "end" and len(prefixes) != 1:
            raise ValueError("CLASS_TOKEN_POSITION middle / front needs a single prompt set")
        embedding = clip_model.token_embedding
        names = [c.replace("_", " ") for c in classnames]
        texts = [template.format(prefix=p, name=n) for n in names for p in prefixes]  # class-major
        tokenized = clip.tokenize(texts).to(embedding.weight.device)
        with torch.no_grad():
            emb = embedding(tokenized)
        n_cls, n_sets = len(names), len(prefixes)
        emb = emb.view(n_cls, n_sets, *emb.shape[1:])
        eot = tokenized.argmax(dim=-1).view(n_cls, n_sets)
        self.n_ctx, self.n_cls, self.n_sets, self.position = n_ctx, n_cls, n_sets, position
        self.prefixes = list(prefixes)
        self.name_lens = [_tokens_of(n) for n in names]
        # Python copy of the EOT positions: sequence lengths are known without a device sync.
        self.class_lengths: List[int] = (eot.max(dim=1).values + 1).tolist()
        self.register_buffer("prefix", emb[:, :, :1], persistent=False)
        self.register_buffer("suffix", emb[:, :, 1 + n_ctx:], persistent=False)
        self.register_buffer("eot", eot, persistent=False)

    def length(self, classes: slice = slice(None)) -> int:
        """Positions needed by ``classes``: up to the last EOT. The text tower is causal, so the positions after
        it never reach the EOT feature or any earlier token: cutting them changes no output."""
        return max(self.class_lengths[classes])

    def embed(self, prompts: Prompts, classes: slice = slice(None)) -> Tuple[torch.Tensor, torch.Tensor]:
        """Prompt embeddings ``[*lead, c, S, L', D_t]`` and EOT positions ``[*lead, c, S]`` for the classes
        ``classes`` (``lead`` = ``(B,)`` per image, else empty); ``L'`` = :meth:`length`."""
        length = self.length(classes)
        prefix, suffix = self.prefix[classes], self.suffix[classes, :, :length - 1 - self.n_ctx]
        eot = self.eot[classes]
        ctx = prompts.text_ctx.to(prefix.dtype)
        if prompts.sets == 1:
            ctx = ctx.unsqueeze(-3)  # set axis
        has_class_axis = ctx.dim() - 3 - prompts.per_image == 1
        ctx = ctx[..., classes, :, :, :] if has_class_axis else ctx.unsqueeze(-4)
        lead = ctx.shape[:-4]
        shape = (*lead, prefix.shape[0], max(prefix.shape[1], ctx.shape[-3]))  # one token set can serve all S
        ctx = ctx.expand(*shape, *ctx.shape[-2:])
        if self.position != "end":
            return self._embed_around_name(prefix, ctx, suffix, classes), eot
        emb = torch.cat([prefix.expand(*shape, *prefix.shape[-2:]), ctx,
                         suffix.expand(*shape, *suffix.shape[-2:])], dim=-2)
        return emb, eot.expand(shape)

    def _embed_around_name(self, prefix, ctx, suffix, classes):
        """CoOp's ``middle`` / ``front`` class-token positions (one set, no image axis): ``[c, 1, L', D_t]``."""
        rows = []
        for i, n in enumerate(self.name_lens[classes]):
            name, rest = suffix[i, :, :n], suffix[i, :, n:]
            if self.position == "front":
                rows.append(torch.cat([prefix[i], name, ctx[i], rest], dim=-2))
            else:
                half = self.n_ctx // 2
                rows.append(torch.cat([prefix[i], ctx[i, :, :half], name, ctx[i, :, half:], rest], dim=-2))
        return torch.stack(rows)


class TextContext(PromptLearner):
    """CoOp's prompt learner: learnable context ``ctx`` (``[n, D_t]``, or ``[C, n, D_t]`` with ``csc``) in the
    class prompts. ``rule`` picks how ``ctx_init`` is used (:func:`context_init`)."""

    def __init__(self, clip_model, classnames, n_ctx: int, ctx_init: str = "", rule: str = "coop",
                 csc: bool = False, position: str = "end"):
        super().__init__()
        init, prefix, n_ctx = context_init(clip_model, ctx_init, n_ctx, rule)
        width = clip_model.token_embedding.weight.shape[1]
        if init is None:
            shape = (len(classnames), n_ctx, width) if csc else (n_ctx, width)
            init = torch.empty(shape).normal_(std=PROMPT_INIT_STD)
        elif csc:
            init = init.unsqueeze(0).repeat(len(classnames), 1, 1)
        self.ctx = nn.Parameter(init)  # fp32 master weights whatever CLIP's precision
        self.n_ctx = n_ctx
        self.prompt_prefix = prefix
        self.classes = ClassTokens(clip_model, classnames, [prefix], n_ctx, position=position)

    def forward(self, image_features=None) -> Prompts:
        return Prompts(class_tokens=self.classes, text_ctx=self.ctx)
