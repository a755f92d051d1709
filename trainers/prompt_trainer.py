"""``PromptTrainer``: what every prompt-learning trainer shares.

CLIP loading in the configured precision, the prompted model, an optimizer over the learnable tensors,
fp16 / bf16 / fp32 / amp training steps, checkpoints holding only the learnable tensors (plus optimizer
and scheduler state), and CoOp-family ``load_model`` (also reads upstream full-state checkpoints).
A method subclass provides ``build_prompt_learner`` and ``compute_loss`` (and, when its loss needs them, the
templates of its frozen text target); nothing else.
"""
import contextlib
import os
import os.path as osp
import time

import torch
import torch.nn.functional as F
from open_clip.model import convert_weights_to_lp

import clip
from dassl.engine import TrainerX
from dassl.metrics import compute_accuracy
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import count_num_param, load_checkpoint, load_pretrained_weights

from .prompted_clip import PromptedCLIP

PRECISIONS = ("fp16", "bf16", "fp32", "amp")
TEXT_TARGET_MEANS = ("raw", "normalized")


def learnable_names(module):
    return [n for n, p in module.named_parameters() if p.requires_grad]


def load_learnable(module, state_dict, source):
    """Load the learnable tensors of ``module`` from ``state_dict`` (ours or upstream's full state)."""
    if isinstance(module, PromptedCLIP):
        return module.load_trainable_state_dict(state_dict, source)
    expected = set(learnable_names(module))
    missing = expected - set(state_dict)
    if missing:
        raise KeyError(f"{source} lacks learnable tensors {sorted(missing)}")
    module.load_state_dict({k: v for k, v in state_dict.items() if k in expected}, strict=False)


class PromptTrainer(TrainerX):
    """Base of CoOp, CoCoOp, IVLP, MaPLe, PromptSRC, PromptOT (and later prompt methods)."""

    #: name of the config node under ``cfg.TRAINER`` (e.g. ``"IVLP"``)
    cfg_node = ""
    #: the name the model is registered (and checkpointed) under
    model_name = "VLPromptLearner"
    #: the model: a ``PromptedCLIP`` (subclasses score differently, e.g. ALIGN's optimal transport)
    model_class = PromptedCLIP

    # ----------------------------------------------------------------------------------------- config
    @property
    def tcfg(self):
        return self.cfg.TRAINER[self.cfg_node]

    def check_cfg(self, cfg):
        node = cfg.TRAINER[self.cfg_node]
        if node.PREC not in PRECISIONS:
            raise ValueError(f"TRAINER.{self.cfg_node}.PREC must be one of {PRECISIONS}, got '{node.PREC}'")
        if "TEXT_TARGET_MEAN" in node and node.TEXT_TARGET_MEAN not in TEXT_TARGET_MEANS:
            raise ValueError(f"TRAINER.{self.cfg_node}.TEXT_TARGET_MEAN must be one of {TEXT_TARGET_MEANS}, "
                             f"got '{node.TEXT_TARGET_MEAN}'")

    # ------------------------------------------------------------------------------------------ model
    def build_prompt_learner(self, clip_model, classnames):
        """The learnable module (``model.prompt_learner``), a ``PromptLearner``."""
        raise NotImplementedError

    def frozen_text_templates(self):
        """Templates of the frozen (zero-shot) text target ``model.zs_text_features [C, E]``, or ``None`` when
        the method needs none. It is encoded once per training run, on the training device, with fp32 CLIP."""
        return None

    def frozen_text_mean(self):
        """How template features are averaged (``PromptedCLIP.frozen_text_features``)."""
        return "raw"

    def registered_module(self):
        """What ``register_model`` stores (CoOp: the prompt learner only; others: the whole model)."""
        return self.model

    def build_model(self):
        cfg = self.cfg
        classnames = self.dm.dataset.classnames
        self.precision = self._effective_precision()
        print(f"Loading CLIP (backbone: {cfg.MODEL.BACKBONE.NAME})")
        clip_model = clip.load_clip_to_cpu(cfg.MODEL.BACKBONE.NAME, pretrained=cfg.MODEL.BACKBONE.PRETRAINED)
        clip_model = clip_model.float()  # prompts and frozen targets are built in fp32
        print("Building custom CLIP")
        self.model = self.model_class(clip_model, self.build_prompt_learner(clip_model, classnames),
                                      backbone_name=cfg.MODEL.BACKBONE.NAME)
        self._clip_model = clip_model  # the frozen CLIP modules (shared with self.model), for the cast below
        self._lowp_done = self.precision not in ("fp16", "bf16")
        self._targets_built = self.frozen_text_templates() is None
        names = learnable_names(self.model)
        print(f"Parameters to be updated: {set(names)}")
        print(f"Parameters count: {len(names)}")
        print(f"# learnable scalars: {sum(p.numel() for p in self.model.parameters() if p.requires_grad):,}"
              f" (of {count_num_param(self.model):,})")
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.registered_module(), cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        if self._targets_built:
            self._cast_low_precision()
        module = self.registered_module()
        params = [p for p in module.parameters() if p.requires_grad]
        self.optim = build_optimizer(params, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model(self.model_name, module, self.optim, self.sched)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "amp" and self.device.type == "cuda" else None
        self._eval_text, self._eval_cache = None, False

    def _cast_low_precision(self):
        """CLIP's matrices in fp16 / bf16 (OpenAI's fp16 layout). The prompt learner holds no CLIP module, so
        the learnable tensors stay fp32 master weights."""
        if not self._lowp_done:
            dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
            convert_weights_to_lp(self._clip_model, dtype=dtype)
            self._lowp_done = True

    def prepare(self, training: bool):
        """Finish the model before its first use: the frozen text target (training only; never in an
        ``--eval-only`` run), then the cast to the low precision. Idempotent and cheap once done."""
        if training and not self._targets_built:
            templates = self.frozen_text_templates()
            start = time.time()
            features = self.model.frozen_text_features(self.dm.dataset.classnames, templates,
                                                       mean=self.frozen_text_mean())
            self.model.register_buffer("zs_text_features", features, persistent=False)
            print(f"Frozen text targets: {len(templates)} template(s) x {features.shape[0]} classes encoded on "
                  f"{self.device.type} in {time.time() - start:.1f}s")
            self._targets_built = True
        self._cast_low_precision()

    def zs_text_features(self) -> torch.Tensor:
        """The frozen text target ``[C, E]`` (fp32, normalised), encoded on first use."""
        self.prepare(training=True)
        return self.model.zs_text_features

    def _effective_precision(self):
        prec = self.tcfg.PREC
        use_cuda = torch.cuda.is_available() and self.cfg.USE_CUDA
        if prec == "fp16" and not use_cuda:
            print("Note: PREC fp16 runs on CUDA only; using fp32 on the CPU")
            return "fp32"
        return prec

    def autocast(self):
        if self.precision != "amp":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    # --------------------------------------------------------------------------------------- training
    def compute_loss(self, images, labels):
        """``(loss, summary dict of 0-d tensors, logits)`` for one batch; the method's equations live here."""
        raise NotImplementedError

    def prompted_outputs(self, images):
        """Prompted ``image [B, E]`` and ``text [C, E]`` features and their ``logits [B, C]`` (one call of the
        prompt learner, so coupled prompts are computed once)."""
        prompts = self.model.prompt_learner()
        image = self.model.encode_image(images, prompts)
        text = self.model.encode_text(prompts)
        return image, text, self.model.logits(image, text)

    def cross_entropy(self, logits, labels):
        return F.cross_entropy(logits.float(), labels)

    def before_train(self):
        self.prepare(training=True)
        super().before_train()

    def parse_batch_train(self, batch):
        return (batch["img"].to(self.device, non_blocking=True),
                batch["label"].to(self.device, non_blocking=True))

    def parse_batch_test(self, batch):
        return self.parse_batch_train(batch)

    def forward_backward(self, batch):
        """One optimiser step. Returns the loss terms as detached device tensors: the engine syncs them only
        every ``TRAIN.PRINT_FREQ`` iterations (log line, tensorboard, finite-loss check)."""
        self.prepare(training=True)
        images, labels = self.parse_batch_train(batch)
        with self.autocast():
            loss, summary, logits = self.compute_loss(images, labels)
        self.optim.zero_grad()
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        else:
            loss.backward()
            self.optim.step()
        summary = {"loss": loss.detach(), **{k: v.detach() if torch.is_tensor(v) else v for k, v in summary.items()},
                   "acc": compute_accuracy(logits.detach(), labels)[0].squeeze(0)}
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
            self.after_last_batch()
        return summary

    def divergence_hint(self):
        if self.precision == "fp32":
            return ""
        return f", or full precision: TRAINER.{self.cfg_node}.PREC fp32 (now {self.tcfg.PREC})"

    def after_last_batch(self):
        """Hook run at the last batch of every epoch, after the LR step (PromptSRC's GPA)."""

    # ------------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def test(self, split=None):
        """Dassl's evaluation, with the class prompts encoded once per evaluation when they do not depend on
        the image (upstream re-encodes them for every test batch)."""
        self.prepare(training=False)
        self._eval_text, self._eval_cache = None, True
        try:
            result = super().test(split)
            self.after_evaluation()
            return result
        finally:
            self._eval_text, self._eval_cache = None, False

    def after_evaluation(self):
        """Hook run after an evaluation's result block, while its class encodings are still cached (SOT-GLP's
        per-head accuracies and OOD scores)."""

    def model_inference(self, images):
        with self.autocast():
            if self.model.prompt_learner.image_conditioned:
                return self.model(images, class_chunk=self.class_chunk()).float()
            if not self._eval_cache:
                return self.model(images).float()
            if self._eval_text is None:
                self._eval_text = self.model.class_encodings(self.model.prompt_learner())
            return self.model(images, text_features=self._eval_text).float()

    def class_chunk(self):
        """Classes per text-encoder call for image-conditioned prompts (0: all at once)."""
        return 0

    # ------------------------------------------------------------------------------------ checkpoints
    def model_state_dict(self, name):
        module = self._models[name]
        keep = set(learnable_names(module))
        return {k: v for k, v in module.state_dict().items() if k in keep}

    def load_model_state(self, name, state_dict):
        load_learnable(self._models[name], state_dict, f"checkpoint of {name}")

    def load_model(self, directory, epoch=None):
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given")
            return
        if not osp.isdir(directory):
            raise FileNotFoundError(f'--model-dir "{directory}" does not exist (expected a training output '
                                    f"directory holding {self.model_name}/model.pth.tar-<epoch>)")
        model_file = "model-best.pth.tar" if epoch is None else f"model.pth.tar-{epoch}"
        for name in self.get_model_names():
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                folder = osp.dirname(model_path)
                avail = sorted(f for f in os.listdir(folder) if f.startswith("model")) if osp.isdir(folder) else []
                others = [] if avail else sorted(f for f in os.listdir(directory) if osp.isdir(osp.join(directory, f))
                                                 and any(g.startswith("model") for g in os.listdir(osp.join(directory, f))))
                raise FileNotFoundError(f'Model not found at "{model_path}"'
                                        + (f"; available: {', '.join(avail)}" if avail else "")
                                        + (f"; {directory} holds checkpoints of {', '.join(others)}: another trainer's "
                                           f"(this one saves {name})" if others else ""))
            checkpoint = load_checkpoint(model_path)
            state_dict = {k: v for k, v in checkpoint["state_dict"].items()
                          if not k.endswith(("token_prefix", "token_suffix"))}
            print(f'Loading weights to {name} from "{model_path}" (epoch = {checkpoint["epoch"]})')
            self.load_model_state(name, state_dict)
