"""ALIGN (Wang et al., "Tuning Multi-mode Token-level Prompt Alignment across Modalities", NeurIPS 2023).

Upstream code name MMP (``trainers/mmp.py`` of wds2014/ALIGN): ``--trainer MMP`` selects the same trainer and
``TRAINER.MMP.*`` keys are aliases of ``TRAINER.ALIGN.*``. The model is MaPLe with a prompt-set axis: N textual
prompt sets ``ctx [N, n, D_t]`` (set 0 from "a photo" with "of a" kept fixed, the others random "X X") and
M = N visual prompt sets, visual set m being the coupling of text set m; each image is encoded once per
visual set (one batched call). Image and class are scored by the two-level optimal transport of
``trainers/align_ot.py``; the loss is cross-entropy on those logits:
    L = CE(scale * <T, s_g>, y)
Checkpoints are registered as ``MultiModalPromptLearner`` (upstream's name), so upstream checkpoints load.
"""
import dataclasses

import torch
import torch.nn.functional as F
from open_clip.transformer import VisionTransformer

from dassl.engine import TRAINER_REGISTRY

from .align_ot import (
    COST_FORMS, LOGIT_FORMS, OT_DTYPES, TOKEN_BYTES_PER_ENTRY, TOKEN_SLICES, TOKEN_TERMS, ClassEncodings,
    OTSettings, normalize, prompt_level, text_token_sets, token_level,
)
from .config import _align_node, resolve_aliases
from .maple import MultiModalPromptLearner
from .prompt_trainer import PromptTrainer
from .prompted_clip import PromptedCLIP

#: classes per text-encoder call while the class prompts are encoded for an evaluation (no gradient)
EVAL_TEXT_CHUNK = 256
#: bytes the automatic class chunk lets the token level hold on the CPU (CUDA: a quarter of the free memory)
CPU_TOKEN_BUDGET = 512 << 20
#: upstream ``setup_cfg`` (``train.py``): epochs of all-class runs by number of shots (else 80); ImageNet: 20
OVERRIDE_EPOCHS = {1: 30, 2: 50, 4: 50}
IMAGENET_EPOCHS = 20


class ALIGNCLIP(PromptedCLIP):
    """``PromptedCLIP`` scored by ALIGN's two-level optimal transport: ``forward(images) -> logits [B, C]``."""

    settings = OTSettings()
    class_chunk = 0  # 0: automatic

    def configure(self, settings: OTSettings, class_chunk: int = 0):
        self.settings, self.class_chunk = settings, class_chunk

    def _ot_dtype(self):
        """``OT_DTYPE model``: the Sinkhorn iterations in CLIP's low precision, as upstream (fp32: ``None``)."""
        return None if self.settings.ot_dtype == "fp32" or self.dtype == torch.float32 else self.dtype

    def class_encodings(self, prompts) -> ClassEncodings:
        """Features ``[C, N, E]`` and, with the token level, the token sets of the class prompts."""
        s = self.settings
        chunk = 0 if torch.is_grad_enabled() else EVAL_TEXT_CHUNK
        if not s.hierarchical:
            return ClassEncodings(normalize(self._with_sets(self.encode_text(prompts, chunk), prompts)))
        features, chunks = self.encode_text(dataclasses.replace(prompts, token_outputs=True), chunk)
        length = max(ch.shape[-2] for ch in chunks)
        tokens = torch.cat([F.pad(ch, (0, 0, 0, length - ch.shape[-2])) for ch in chunks])
        tokens = self._with_sets(tokens, prompts, extra=2)
        if s.logits == "global":  # the token level does not enter the gradient
            tokens = tokens.detach()
        tokens, lengths = text_token_sets(tokens, prompts.class_tokens.eot.view(tokens.shape[:2]), s.token_slice)
        return ClassEncodings(normalize(self._with_sets(features, prompts)), tokens, lengths,
                              lengths.amax(1).tolist())

    @staticmethod
    def _with_sets(x, prompts, extra: int = 1):
        """One prompt set: give ``x`` its set axis (``[C, E] -> [C, 1, E]``, tokens ``[C, L, E] -> [C, 1, L, E]``)."""
        return x.unsqueeze(-1 - extra) if prompts.sets == 1 else x

    def image_encodings(self, images, prompts):
        """Normalised class-token features ``[B, M, E]`` and tokens ``[B, M, P, E]`` (patches + prompt outputs,
        upstream's ``image_outputs[:, :, 1:]``), or ``None`` without the token level."""
        sets = prompts.sets
        if not self.settings.hierarchical:
            z = self.encode_image(images, prompts)
            return normalize(z.view(images.shape[0], sets, -1)), None
        z, tokens = self.encode_image(images, prompts, tokens="all")
        z, tokens = z.view(images.shape[0], sets, -1), tokens.view(images.shape[0], sets, *tokens.shape[-2:])
        if self.settings.logits == "global":
            tokens = tokens.detach()
        return normalize(z), normalize(tokens)

    def token_chunk(self, n_images, pairs, n_tokens, max_len):
        """Classes per token-level batch: ``TRAINER.ALIGN.CLASS_CHUNK``, or what fits a memory budget."""
        if self.class_chunk > 0:
            return self.class_chunk
        device = self.logit_scale.device
        budget = torch.cuda.mem_get_info(device)[0] // 4 if device.type == "cuda" else CPU_TOKEN_BUDGET
        per_class = n_images * pairs * n_tokens * max_len * TOKEN_BYTES_PER_ENTRY
        return max(1, budget // per_class)

    def scores(self, image, classes: ClassEncodings):
        """Logits ``[B, C]`` from :meth:`image_encodings` and :meth:`class_encodings`."""
        (z, x), h, s = image, classes.features, self.settings
        s_g = torch.einsum("bme,cne->bcmn", z, h.to(z.dtype))
        term = None
        if s.hierarchical:
            B, M, P, _ = x.shape
            C, N = classes.lengths.shape
            chunk = self.token_chunk(B, M * N, P, max(classes.class_lengths))
            terms = []
            for c0 in range(0, C, chunk):
                length = max(classes.class_lengths[c0:c0 + chunk])
                terms.append(token_level(x, classes.tokens[c0:c0 + chunk, :, :length],
                                         classes.lengths[c0:c0 + chunk], s, self._ot_dtype()))
            term = torch.cat(terms, dim=1)
        return prompt_level(s_g, term, self.logit_scale.exp(), s, self._ot_dtype())

    def forward(self, images, text_features=None, class_chunk: int = 0):
        """Logits ``[B, C]``; ``text_features``: :meth:`class_encodings` computed beforehand (evaluation)."""
        prompts = self.prompt_learner()
        classes = self.class_encodings(prompts) if text_features is None else text_features
        return self.scores(self.image_encodings(images, prompts), classes)


def resolve_align_cfg(cfg):
    """Before the trainer reads ``cfg``: merge the ``TRAINER.MMP`` aliases into ``TRAINER.ALIGN`` and apply
    upstream's epoch override (``setup_cfg`` of its ``train.py``; ``EPOCH_OVERRIDE``). Idempotent."""
    frozen = cfg.is_frozen()
    cfg.defrost()
    resolve_aliases(cfg, "ALIGN", "MMP", _align_node())
    if cfg.TRAINER.ALIGN.EPOCH_OVERRIDE and cfg.DATASET.SUBSAMPLE_CLASSES == "all":
        epochs = (IMAGENET_EPOCHS if cfg.DATASET.NAME == "ImageNet"
                  else OVERRIDE_EPOCHS.get(cfg.DATASET.NUM_SHOTS, 80))
        if epochs != cfg.OPTIM.MAX_EPOCH:
            print(f"Note: TRAINER.ALIGN.EPOCH_OVERRIDE (upstream's all-class rule): OPTIM.MAX_EPOCH "
                  f"{cfg.OPTIM.MAX_EPOCH} -> {epochs} ({cfg.DATASET.NUM_SHOTS} shots of {cfg.DATASET.NAME}); set "
                  "TRAINER.ALIGN.EPOCH_OVERRIDE False to keep the config's value")
            cfg.OPTIM.MAX_EPOCH = epochs
    if frozen:
        cfg.freeze()


def _check_choice(node, key, choices):
    if node[key] not in choices:
        raise ValueError(f"TRAINER.ALIGN.{key} must be one of {choices}, got '{node[key]}'")


@TRAINER_REGISTRY.register()
class ALIGN(PromptTrainer):
    cfg_node = "ALIGN"
    model_name = "MultiModalPromptLearner"
    model_class = ALIGNCLIP

    def check_cfg(self, cfg):
        resolve_align_cfg(cfg)
        super().check_cfg(cfg)
        t = cfg.TRAINER.ALIGN
        if t.TEXT_PROMPT_NUMBER != t.VISION_PROMPT_NUMBER:
            raise ValueError(f"TRAINER.ALIGN.TEXT_PROMPT_NUMBER ({t.TEXT_PROMPT_NUMBER}) != VISION_PROMPT_NUMBER "
                             f"({t.VISION_PROMPT_NUMBER}): visual prompt m is the coupling of text prompt m, so "
                             "set both to the same number")
        if t.TEXT_PROMPT_NUMBER < 1:
            raise ValueError(f"TRAINER.ALIGN.TEXT_PROMPT_NUMBER must be >= 1, got {t.TEXT_PROMPT_NUMBER}")
        if t.USECT:
            raise ValueError("TRAINER.ALIGN.USECT True: upstream's conditional-transport path is dead code (it reads "
                             "an undefined prompt_learner.phi) and is not implemented; set USECT False")
        for key, choices in (("TOKEN_TERM", TOKEN_TERMS), ("COST_FORM", COST_FORMS), ("LOGITS", LOGIT_FORMS),
                             ("TOKEN_SLICE", TOKEN_SLICES), ("OT_DTYPE", OT_DTYPES)):
            _check_choice(t, key, choices)
        if not t.OT_EPS > 0:
            raise ValueError(f"TRAINER.ALIGN.OT_EPS must be > 0, got {t.OT_EPS}")
        if t.VISION_PROMPT_DEPTH != t.TEXT_PROMPT_DEPTH:
            print(f"Note: TRAINER.ALIGN.VISION_PROMPT_DEPTH ({t.VISION_PROMPT_DEPTH}) is not read (as upstream); "
                  f"TEXT_PROMPT_DEPTH ({t.TEXT_PROMPT_DEPTH}) sets the depth of both branches")

    def settings(self) -> OTSettings:
        t = self.tcfg
        return OTSettings(eps=t.OT_EPS, max_iter=t.OT_MAX_ITER, thresh=t.OT_THRESH, hierarchical=t.HIERARCHICAL,
                          token_term=t.TOKEN_TERM, cost_form=t.COST_FORM, beta=t.BETA, logits=t.LOGITS,
                          token_slice=t.TOKEN_SLICE, ot_dtype=t.OT_DTYPE)

    def build_prompt_learner(self, clip_model, classnames):
        t = self.tcfg
        if not isinstance(clip_model.visual, VisionTransformer):
            raise ValueError(f"MODEL.BACKBONE.NAME {self.cfg.MODEL.BACKBONE.NAME}: ALIGN needs a ViT backbone (its "
                             "visual prompts and token-level OT read the transformer's tokens); use a ViT")
        learner = MultiModalPromptLearner(clip_model, classnames, t.N_CTX, t.CTX_INIT, t.TEXT_PROMPT_DEPTH,
                                          sets=t.TEXT_PROMPT_NUMBER, depth_key="TRAINER.ALIGN.TEXT_PROMPT_DEPTH")
        print("ALIGN (MMP) design: multi-mode prompts with two-level optimal transport")
        print(f"Initial context: {learner.prompt_prefix}")
        print(f"Number of TEXT / VISION prompts: {t.TEXT_PROMPT_NUMBER} / {t.VISION_PROMPT_NUMBER}")
        print(f"Number of context words (tokens): {t.N_CTX}")
        return learner

    def build_model(self):
        super().build_model()
        self.model.configure(self.settings(), self.tcfg.CLASS_CHUNK)
        if self.tcfg.GRAD_CHECKPOINT:
            self._clip_model.set_grad_checkpointing(True)

    def compute_loss(self, images, labels):
        logits = self.model(images)
        return self.cross_entropy(logits, labels), {}, logits

    def load_model_state(self, name, state_dict):
        ctx = state_dict.get("prompt_learner.ctx")
        if ctx is not None and ctx.dim() == 2:
            raise ValueError(f"checkpoint of {name}: prompt_learner.ctx has shape {tuple(ctx.shape)} without a "
                             "prompt-set axis: it was trained with --trainer MaPLe; evaluate it with MaPLe")
        super().load_model_state(name, state_dict)


@TRAINER_REGISTRY.register()
class MMP(ALIGN):
    """Upstream's name of the ALIGN trainer (``--trainer MMP``)."""
