"""SOT-GLP trainer (registry key ``SOTGLP``, keys ``TRAINER.SOTGLP.*``): the model of ``sotglp_model.py``
trained with ``L = L_global + L_local`` (``gl_sot_loss.py``), periodic evaluation every ``EVAL_FREQ`` epochs,
result lines ``accuracy_global`` / ``accuracy_local`` after Dassl's block, and the ImageNet OOD evaluation
(``train_sot_glp.py`` ``evaluate_ood``).

Checkpoints (``<OUTPUT_DIR>/SOTGLP/model.pth.tar-<N>``) hold only the trainable tensors (``global_prompt``,
``local_prompts``, ``local_proj``). ``--model-dir`` may also name an upstream checkpoint
``sotglp_<dataset>_vit_b16_seed<seed>.ckpt`` (or a folder holding one).
"""
import argparse
import glob
import os.path as osp
from collections import OrderedDict

import numpy as np
import torch

from dassl.data.data_manager import build_data_loader
from dassl.data.datasets import build_dataset
from dassl.data.transforms import build_transform
from dassl.engine import TRAINER_REGISTRY

from .ood_metrics import OOD_METHODS, auroc, fpr_at_recall, ood_block, ood_score
from .prompt_trainer import PromptTrainer
from .sotglp_model import (
    LOCAL_SCORE_NORMS, OT_PLANS, OT_STOP_RULES, OTConfig, SOTGLPCLIP, SOTGLPPromptLearner, dropout_global_logits,
)

#: ``OOD_DATASETS`` entry meaning "the source dataset's classes left out by ``SUBSAMPLE_CLASSES base``"
HELD_OUT = "held_out_classes"


@TRAINER_REGISTRY.register()
class SOTGLP(PromptTrainer):
    cfg_node = "SOTGLP"
    model_name = "SOTGLP"
    model_class = SOTGLPCLIP

    # ------------------------------------------------------------------------------------------ config
    def check_cfg(self, cfg):
        super().check_cfg(cfg)
        t = cfg.TRAINER.SOTGLP
        choices = (("OT_PLAN", OT_PLANS), ("OT_STOP_RULE", OT_STOP_RULES), ("LOCAL_SCORE_NORM", LOCAL_SCORE_NORMS),
                   ("OOD_METHOD", OOD_METHODS))
        for key, allowed in choices:
            if t[key] not in allowed:
                raise ValueError(f"TRAINER.SOTGLP.{key} must be one of {allowed}, got '{t[key]}'")
        if t.N_LOCAL_PROMPTS == 0 and t.USE_LOCAL_LOSS:
            raise ValueError("TRAINER.SOTGLP.N_LOCAL_PROMPTS is 0 but TRAINER.SOTGLP.USE_LOCAL_LOSS is True: the "
                             "local loss needs local prompts; set N_LOCAL_PROMPTS >= 1 or USE_LOCAL_LOSS False")
        if t.N_LOCAL_PROMPTS == 0 and t.OOD_METHOD != "MCM" and t.EVAL_OOD:
            raise ValueError(f"TRAINER.SOTGLP.OOD_METHOD {t.OOD_METHOD} reads the local prompts but "
                             "N_LOCAL_PROMPTS is 0; use OOD_METHOD MCM or N_LOCAL_PROMPTS >= 1")
        if not (t.USE_GLOBAL_LOSS or t.USE_LOCAL_LOSS):
            raise ValueError("TRAINER.SOTGLP.USE_GLOBAL_LOSS and USE_LOCAL_LOSS are both False: nothing to train")
        if t.TOPK < 1:
            raise ValueError(f"TRAINER.SOTGLP.TOPK must be >= 1, got {t.TOPK}")
        if not t.OOD_TEMP > 0:
            raise ValueError(f"TRAINER.SOTGLP.OOD_TEMP must be > 0, got {t.OOD_TEMP}")
        if t.EVAL_OOD and cfg.DATASET.NAME != "ImageNet" and not t.OOD_DATASETS:
            raise ValueError(f"TRAINER.SOTGLP.EVAL_OOD is True on DATASET.NAME {cfg.DATASET.NAME}: the default "
                             "OOD sets (iNaturalist, SUN, Places, Textures) are ImageNet's; name the OOD sets in "
                             f"TRAINER.SOTGLP.OOD_DATASETS (e.g. ['{HELD_OUT}'] with DATASET.SUBSAMPLE_CLASSES "
                             "base) or set EVAL_OOD False")
        if HELD_OUT in t.OOD_DATASETS and t.EVAL_OOD and cfg.DATASET.SUBSAMPLE_CLASSES != "base":
            raise ValueError(f"TRAINER.SOTGLP.OOD_DATASETS '{HELD_OUT}' are the new classes left out of training: "
                             "it needs DATASET.SUBSAMPLE_CLASSES base (got "
                             f"'{cfg.DATASET.SUBSAMPLE_CLASSES}')")

    # ------------------------------------------------------------------------------------------- model
    def build_prompt_learner(self, clip_model, classnames):
        t = self.tcfg
        learner = SOTGLPPromptLearner(clip_model, classnames, t.N_CTX, t.CTX_INIT, t.N_GLOBAL_PROMPTS,
                                      t.N_LOCAL_PROMPTS, t.LOCAL_INIT,
                                      learn=(t.LEARN_GLOBAL_PROMPT, t.LEARN_LOCAL_PROMPTS, t.LEARN_LOCAL_PROJ))
        print(f"SOT-GLP: {t.N_GLOBAL_PROMPTS} global prompt(s), {t.N_LOCAL_PROMPTS} local prompt(s) per class, "
              f'context "{learner.prompt_prefix}" ({learner.n_ctx} tokens), top-{t.TOPK} patches')
        return learner

    def build_model(self):
        self._parts, self._id_scores, self._labels, self._periodic, self._ood_items = None, None, None, False, None
        super().build_model()
        t, model = self.tcfg, self.model
        if t.TOPK > model.n_patches:
            raise ValueError(f"TRAINER.SOTGLP.TOPK {t.TOPK} is larger than the {model.n_patches} patches of "
                             f"{self.cfg.MODEL.BACKBONE.NAME} at INPUT.SIZE {tuple(self.cfg.INPUT.SIZE)}; "
                             f"use TOPK <= {model.n_patches}")
        n_blocks = len(model.image_encoder.visual.transformer.resblocks)
        if not 0 <= t.V2V_START_LAYER < n_blocks:
            raise ValueError(f"TRAINER.SOTGLP.V2V_START_LAYER must be in 0..{n_blocks - 1} (vision blocks of "
                             f"{self.cfg.MODEL.BACKBONE.NAME}), got {t.V2V_START_LAYER}")
        model.v2v_start, model.v2v_alias = t.V2V_START_LAYER, t.V2V_FIRST_LAYER_ALIAS
        model.ot = OTConfig(topk=t.TOPK, eps=t.OT_EPS, max_iter=t.OT_MAX_ITER, thresh=t.OT_THRESH,
                            stop_rule=t.OT_STOP_RULE, tol=t.OT_TOL, plan=t.OT_PLAN, score_norm=t.LOCAL_SCORE_NORM,
                            unbalanced=t.OT_UNBALANCED, reg_m=t.OT_REG_M)
        model.set_text_checkpointing(t.CHECKPOINTING_SEGMENTS)
        # OOD sets are listed now, so a missing folder stops the run before any training
        try:
            self._ood_items = self.ood_sets() if t.EVAL_OOD else None
        except FileNotFoundError as err:
            raise type(err)(f"{err} (TRAINER.SOTGLP.EVAL_OOD is True; set it False to skip the OOD "
                            "evaluation)") from None

    def class_chunk(self):
        return self.tcfg.CLASS_CHUNK

    # ---------------------------------------------------------------------------------------- training
    def compute_loss(self, images, labels):
        t, model = self.tcfg, self.model
        t_global, t_local = model.encode_text_sets(self.class_chunk())
        out = model.outputs(images, t_global, t_local, self.class_chunk())
        scale = model.logit_scale.exp().detach()
        zero = torch.zeros((), device=images.device)
        loss_global = (self.cross_entropy(scale * dropout_global_logits(out.g, t.GLOBAL_DROPOUT_P), labels)
                       if t.USE_GLOBAL_LOSS else zero)
        loss_local = self.cross_entropy(scale * out.s, labels) if t.USE_LOCAL_LOSS else zero
        loss = loss_global + loss_local
        return loss, {"loss_global": loss_global, "loss_local": loss_local}, scale * out.combined()

    def after_epoch(self):
        super().after_epoch()
        freq, last = self.tcfg.EVAL_FREQ, self.epoch + 1 == self.max_epoch
        if freq > 0 and (self.epoch + 1) % freq == 0 and not last and not self.cfg.TEST.NO_TEST:
            self._periodic = True
            try:
                self.test()
            finally:
                self._periodic = False

    # -------------------------------------------------------------------------------------- evaluation
    def parse_batch_test(self, batch):
        images, labels = super().parse_batch_test(batch)
        self._labels = labels
        return images, labels

    def _class_features(self):
        if self._eval_text is None or not self._eval_cache:
            self._eval_text = self.model.encode_text_sets(self.class_chunk())
        return self._eval_text

    def model_inference(self, images):
        with self.autocast():
            t_global, t_local = self._class_features()
            out = self.model.outputs(images, t_global, t_local, self.class_chunk())
        labels = self._labels
        if labels is not None and self._parts is not None:
            self._parts["global"] += int((out.g.mean(-1).argmax(1) == labels).sum())
            if out.s is not None:
                self._parts["local"] += int((out.s.argmax(1) == labels).sum())
            self._parts["total"] += len(labels)
        if self._id_scores is not None:
            self._id_scores.append(self._ood_scores(out).cpu())
        return out.combined().float()

    def _ood_scores(self, out):
        t = self.tcfg
        return ood_score(t.OOD_METHOD, t.OOD_TEMP, out.g.mean(-1), out.r)

    @torch.no_grad()
    def test(self, split=None):
        resolved = split or self.cfg.TEST.SPLIT
        final = not self._periodic and (resolved == "test" or self.val_loader is None)
        self._parts = {"global": 0, "local": 0, "total": 0}
        self._id_scores = [] if (final and self.tcfg.EVAL_OOD) else None
        try:
            return super().test(split)
        finally:
            self._parts, self._id_scores, self._labels = None, None, None

    def after_evaluation(self):
        """Per-head accuracies, then (final test) the OOD block, with the class features of this evaluation."""
        parts = self._parts
        if parts["total"]:
            print(f"* accuracy_global: {100.0 * parts['global'] / parts['total']:.1f}%")
            if self.model.prompt_learner.n_local:
                print(f"* accuracy_local: {100.0 * parts['local'] / parts['total']:.1f}%")
        if self._id_scores is not None:
            self.evaluate_ood(torch.cat(self._id_scores).numpy())

    def ood_sets(self):
        """OrderedDict OOD set name -> list of Datum (``TRAINER.SOTGLP.OOD_DATASETS``, default ImageNet's)."""
        from datasets.ood import build_ood_datasets

        names = list(self.tcfg.OOD_DATASETS)
        sets = OrderedDict()
        if HELD_OUT in names:
            cfg = self.cfg.clone()
            cfg.defrost()
            cfg.DATASET.SUBSAMPLE_CLASSES = "new"
            sets["held-out classes"] = build_dataset(cfg).test
            names.remove(HELD_OUT)
        if names or not sets:
            sets.update((k, v.test) for k, v in build_ood_datasets(self.cfg, names or None).items())
        return sets

    @torch.no_grad()
    def evaluate_ood(self, id_scores: np.ndarray):
        """Score every OOD set, print FPR95 / AUROC (x100) per set and their average (``ood_block``)."""
        t = self.tcfg
        tfm = build_transform(self.cfg, is_train=False)
        with self.autocast():
            t_global, t_local = self._class_features()  # cached when called from an evaluation
        results = []
        if self._ood_items is None:
            self._ood_items = self.ood_sets()
        for name, items in self._ood_items.items():
            loader = build_data_loader(self.cfg, data_source=items, batch_size=self.cfg.DATALOADER.TEST.BATCH_SIZE,
                                       tfm=tfm, is_train=False)
            scores = []
            for batch in loader:
                with self.autocast():
                    out = self.model.outputs(batch["img"].to(self.device), t_global, t_local, self.class_chunk(),
                                             need_score=False)
                scores.append(self._ood_scores(out).cpu())
            ood = torch.cat(scores).numpy()
            results.append((name, 100.0 * fpr_at_recall(id_scores, ood), 100.0 * auroc(id_scores, ood)))
        print(ood_block(self.cfg.DATASET.NAME, t.OOD_METHOD, t.OOD_TEMP, results))
        return results

    # ------------------------------------------------------------------------------------- checkpoints
    def load_model(self, directory, epoch=None):
        upstream = upstream_checkpoint(directory, self.cfg.SEED)
        if upstream is None:
            return super().load_model(directory, epoch)
        state = load_upstream_state(upstream)
        print("Upstream SOT-GLP checkpoint (trainable state dict)")
        print(f'Loading weights to {self.model_name} from "{upstream}" (epoch = {state["epoch"]})')
        self.load_model_state(self.model_name, state["state_dict"])


def upstream_checkpoint(directory, seed=None):
    """The upstream ``sotglp_<dataset>_<arch>_seed<seed>.ckpt`` that ``--model-dir`` names (the file, or a folder
    holding one, without a Dassl ``SOTGLP/`` sub-folder), else None."""
    if not directory:
        return None
    if osp.isfile(directory) and directory.endswith(".ckpt"):
        return directory
    if not osp.isdir(directory) or osp.isdir(osp.join(directory, SOTGLP.model_name)):
        return None
    found = sorted(glob.glob(osp.join(directory, "sotglp_*.ckpt")))
    if len(found) > 1 and seed is not None:
        found = [f for f in found if f.endswith(f"_seed{seed}.ckpt")] or found
    if len(found) > 1:
        raise FileNotFoundError(f'--model-dir "{directory}" holds several upstream checkpoints '
                                f"({', '.join(osp.basename(f) for f in found)}); pass the file itself")
    return found[0] if found else None


def load_upstream_state(path):
    """``{"epoch", "state_dict"}`` of an upstream checkpoint (``lib/save_checkpoint.py``: epoch, train meter,
    trainable state dict, optimizer, scheduler, scaler, argparse args), read without executing code."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise ValueError(f'"{path}" is not an upstream SOT-GLP checkpoint (no "state_dict" entry)')
    epoch = ckpt.get("epoch", "?")
    return {"epoch": epoch + 1 if isinstance(epoch, int) else epoch, "state_dict": ckpt["state_dict"]}
