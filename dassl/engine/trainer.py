"""``TrainerBase`` / ``SimpleTrainer`` / ``TrainerX``: Dassl's training loop, hooks, logs and checkpoints."""
import datetime
import os.path as osp
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from dassl.data import DataManager
from dassl.engine.midepoch import MidEpochCheckpoints
from dassl.evaluation import build_evaluator
from dassl.optim import build_lr_scheduler, build_optimizer

from dassl.utils import (
    AverageMeter, MetricMeter, count_num_param, find_resume_checkpoint, get_rng_state, load_checkpoint, signals,
    load_pretrained_weights, mkdir_if_missing, remove_stale_temp_files, resume_from_checkpoint, save_checkpoint,
    tolist_if_not,
)


class SimpleNet(nn.Module):
    """A torchvision backbone (``MODEL.BACKBONE.NAME``) + linear classifier; Dassl's default model."""

    def __init__(self, cfg, model_cfg, num_classes, **kwargs):
        super().__init__()
        import torchvision

        try:
            backbone = torchvision.models.get_model(model_cfg.BACKBONE.NAME, weights=None)
        except ValueError as e:
            raise ValueError(f"MODEL.BACKBONE.NAME '{model_cfg.BACKBONE.NAME}' is not a torchvision model; "
                             "CoOp-family trainers build their own model instead.") from e
        fdim = backbone.fc.in_features
        backbone.fc = nn.Identity()
        self.backbone = backbone
        self.head = None
        self.classifier = nn.Linear(fdim, num_classes) if num_classes > 0 else None
        self._fdim = fdim

    @property
    def fdim(self):
        return self._fdim

    def forward(self, x, return_feature=False):
        f = self.backbone(x)
        if self.classifier is None:
            return f
        y = self.classifier(f)
        return (y, f) if return_feature else y


class TrainerBase(MidEpochCheckpoints):
    """Registered models/optimizers/schedulers, the epoch loop and checkpoint I/O."""

    def __init__(self):
        self._models = OrderedDict()
        self._optims = OrderedDict()
        self._scheds = OrderedDict()
        self._writer = None

    def register_model(self, name="model", model=None, optim=None, sched=None):
        if self.__dict__.get("_models") is None:
            raise AttributeError("Cannot assign model before super().__init__() call")
        if self.__dict__.get("_optims") is None:
            raise AttributeError("Cannot assign optim before super().__init__() call")
        if self.__dict__.get("_scheds") is None:
            raise AttributeError("Cannot assign sched before super().__init__() call")
        assert name not in self._models, "Found duplicate model names"
        self._models[name] = model
        self._optims[name] = optim
        self._scheds[name] = sched

    def get_model_names(self, names=None):
        names_real = list(self._models.keys())
        if names is not None:
            names = tolist_if_not(names)
            for name in names:
                assert name in names_real
            return names
        return names_real

    def model_state_dict(self, name):
        """What ``save_model`` stores for model ``name`` (trainers may store only trainable tensors)."""
        return self._models[name].state_dict()

    def load_model_state(self, name, state_dict):
        """Inverse of :meth:`model_state_dict` (used when resuming)."""
        self._models[name].load_state_dict(state_dict)

    def save_model(self, epoch, directory, is_best=False, val_result=None, model_name="", extra=None):
        for name in self.get_model_names():
            optim = self._optims[name]
            sched = self._scheds[name]
            save_checkpoint(
                {
                    "state_dict": self.model_state_dict(name),
                    "epoch": epoch + 1,
                    "optimizer": optim.state_dict() if optim is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "val_result": val_result,
                    "rng_state": get_rng_state(),
                    **(extra or {}),
                },
                osp.join(directory, name),
                is_best=is_best,
                model_name=model_name,
            )

    def resume_model_if_exist(self, directory):
        names = self.get_model_names()
        # A folder without a valid pointer falls back to its newest loadable model.pth.tar-N (a run killed
        # while saving); nothing loadable means a fresh start.
        found = {name: find_resume_checkpoint(osp.join(directory, name)) for name in names}
        if any(path is None for path, _ in found.values()):
            print("No checkpoint found, train from scratch")
            return 0
        print(f"Found checkpoint at {directory} (will resume training)")
        start_epoch = 0
        for name in names:
            path = osp.join(directory, name)
            start_epoch = resume_from_checkpoint(path, self._models[name], self._optims[name], self._scheds[name],
                                                 load_state=lambda sd, name=name: self.load_model_state(name, sd),
                                                 found=found[name])
            self.note_resumed_checkpoint(found[name][1])
        return start_epoch

    def load_model(self, directory, epoch=None):
        if not directory:
            print("Note that load_model() is skipped as no pretrained model is given "
                  "(ignore this if it's done on purpose)")
            return
        if not osp.isdir(directory):
            raise FileNotFoundError(f'--model-dir "{directory}" does not exist (expected the output directory '
                                    "of a training run, holding <model-name>/model.pth.tar-<epoch>)")
        names = self.get_model_names()
        if not names:
            print(f"Note: {type(self).__name__} has no learnable weights; nothing is loaded from {directory}")
        model_file = "model-best.pth.tar"
        if epoch is not None:
            model_file = "model.pth.tar-" + str(epoch)
        for name in names:
            model_path = osp.join(directory, name, model_file)
            if not osp.exists(model_path):
                raise FileNotFoundError(f"No model at {model_path}")
            checkpoint = load_checkpoint(model_path)
            state_dict = checkpoint["state_dict"]
            epoch_ = checkpoint["epoch"]
            val_result = checkpoint.get("val_result", checkpoint.get("result"))
            val_str = "None" if val_result is None else f"{val_result:.1f}"
            print(f"Load {model_path} to {name} (epoch={epoch_}, val_result={val_str})")
            self._models[name].load_state_dict(state_dict)

    def set_model_mode(self, mode="train", names=None):
        names = self.get_model_names(names)
        for name in names:
            if mode == "train":
                self._models[name].train()
            elif mode in ["test", "eval"]:
                self._models[name].eval()
            else:
                raise KeyError(f"Unknown model mode '{mode}'")

    def update_lr(self, names=None):
        names = self.get_model_names(names)
        for name in names:
            if self._scheds[name] is not None:
                self._scheds[name].step()

    def detect_anomaly(self, loss):
        if not torch.isfinite(loss).all():
            raise FloatingPointError("Loss is infinite or NaN!")

    def init_writer(self, log_dir):
        if self.__dict__.get("_writer") is None or self._writer is None:
            print(f"Initialize tensorboard (log_dir={log_dir})")
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=log_dir)

    def close_writer(self):
        if self._writer is not None:
            self._writer.close()

    def write_scalar(self, tag, scalar_value, global_step=None):
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)

    def train(self, start_epoch, max_epoch):
        """Generic loop: ``before_train``; per epoch ``before_epoch / run_epoch / after_epoch``; ``after_train``."""
        self.start_epoch = start_epoch
        self.max_epoch = max_epoch
        self.before_train()
        for self.epoch in range(self.start_epoch, self.max_epoch):
            self.before_epoch()
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def before_train(self):
        pass

    def after_train(self):
        pass

    def before_epoch(self):
        pass

    def after_epoch(self):
        pass

    def run_epoch(self):
        raise NotImplementedError

    def test(self):
        raise NotImplementedError

    def parse_batch_train(self, batch):
        raise NotImplementedError

    def parse_batch_test(self, batch):
        raise NotImplementedError

    def forward_backward(self, batch):
        raise NotImplementedError

    def model_inference(self, input):
        raise NotImplementedError

    def model_zero_grad(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].zero_grad()

    def model_backward(self, loss):
        self.detect_anomaly(loss)
        loss.backward()

    def model_update(self, names=None):
        for name in self.get_model_names(names):
            if self._optims[name] is not None:
                self._optims[name].step()

    def model_backward_and_update(self, loss, names=None):
        self.model_zero_grad(names)
        self.model_backward(loss)
        self.model_update(names)


class SimpleTrainer(TrainerBase):
    """A trainer with one data manager, one evaluator and the default epoch bookkeeping."""

    def __init__(self, cfg):
        super().__init__()
        self.check_cfg(cfg)
        if torch.cuda.is_available() and cfg.USE_CUDA:
            self.device = torch.device("cuda")
        else:
            self.device = torch.device("cpu")
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.output_dir = cfg.OUTPUT_DIR
        self.cfg = cfg
        self.build_data_loader()
        self.build_model()
        self.evaluator = build_evaluator(cfg, lab2cname=self.lab2cname)
        self.best_result = -np.inf

    def check_cfg(self, cfg):
        """Hook to validate ``cfg`` before anything is built (called before ``self.cfg`` is set)."""
        pass

    def build_data_loader(self):
        dm = DataManager(self.cfg)
        self.train_loader_x = dm.train_loader_x
        self.train_loader_u = dm.train_loader_u
        self.val_loader = dm.val_loader
        self.test_loader = dm.test_loader
        self.num_classes = dm.num_classes
        self.num_source_domains = dm.num_source_domains
        self.lab2cname = dm.lab2cname
        self.dm = dm

    def build_model(self):
        cfg = self.cfg
        print("Building model")
        self.model = SimpleNet(cfg, cfg.MODEL, self.num_classes)
        if cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model, cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        print(f"# params: {count_num_param(self.model):,}")
        self.optim = build_optimizer(self.model, cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM)
        self.register_model("model", self.model, self.optim, self.sched)
        device_count = torch.cuda.device_count()
        if device_count > 1 and cfg.USE_CUDA:
            print(f"Detected {device_count} GPUs (use nn.DataParallel)")
            self.model = nn.DataParallel(self.model)

    def train(self):
        super().train(self.start_epoch, self.max_epoch)

    def before_train(self):
        directory = self.cfg.OUTPUT_DIR
        if self.cfg.RESUME:
            directory = self.cfg.RESUME
        remove_stale_temp_files(self.output_dir, self.get_model_names())
        self.start_epoch = self.resume_model_if_exist(directory)
        writer_dir = osp.join(self.output_dir, "tensorboard")
        mkdir_if_missing(writer_dir)
        self.init_writer(writer_dir)
        self.time_start = time.time()

    def after_train(self):
        print("Finish training")
        do_test = not self.cfg.TEST.NO_TEST
        if do_test:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                print("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                print("Deploy the last-epoch model")
            self.test()
        elapsed = round(time.time() - self.time_start)
        print(f"Elapsed: {datetime.timedelta(seconds=elapsed)}")
        self.close_writer()

    def after_epoch(self):
        last_epoch = (self.epoch + 1) == self.max_epoch
        do_test = not self.cfg.TEST.NO_TEST
        meet_checkpoint_freq = (
            (self.epoch + 1) % self.cfg.TRAIN.CHECKPOINT_FREQ == 0 if self.cfg.TRAIN.CHECKPOINT_FREQ > 0 else False
        )
        if do_test and self.cfg.TEST.FINAL_MODEL == "best_val":
            curr_result = self.test(split="val")
            is_best = curr_result > self.best_result
            if is_best:
                self.best_result = curr_result
                self.save_model(self.epoch, self.output_dir, val_result=curr_result, model_name="model-best.pth.tar")
        if meet_checkpoint_freq or last_epoch:
            self.save_model(self.epoch, self.output_dir)

    @torch.no_grad()
    def test(self, split=None):
        """Evaluate on ``split`` (``TEST.SPLIT`` by default); print the result block; return accuracy."""
        self.set_model_mode("eval")
        self.evaluator.reset()
        if split is None:
            split = self.cfg.TEST.SPLIT
        if split == "val" and self.val_loader is not None:
            data_loader = self.val_loader
        else:
            split = "test"
            data_loader = self.test_loader
        print(f"Evaluate on the *{split}* set")
        for batch_idx, batch in enumerate(tqdm(data_loader, file=sys.__stderr__, dynamic_ncols=True)):
            input, label = self.parse_batch_test(batch)
            output = self.model_inference(input)
            self.evaluator.process(output, label)
        results = self.evaluator.evaluate()
        self.last_test_result = {"split": split, **results}  # read by the run's provenance record
        for k, v in results.items():
            self.write_scalar(f"{split}/{k}", v, self.epoch)
        return list(results.values())[0]

    def model_inference(self, input):
        return self.model(input)

    def parse_batch_test(self, batch):
        input = batch["img"].to(self.device)
        label = batch["label"].to(self.device)
        return input, label

    def get_current_lr(self, names=None):
        names = self.get_model_names(names)
        name = names[0]
        return self._optims[name].param_groups[0]["lr"]


class TrainerX(SimpleTrainer):
    """A trainer over labelled data only (``train_loader_x``)."""

    def run_epoch(self):
        self.set_model_mode("train")
        losses = MetricMeter()
        batch_time = AverageMeter()
        data_time = AverageMeter()
        self.num_batches = len(self.train_loader_x)
        end = time.time()
        recent_losses = []  # (batch index, loss tensor) since the last sync
        for self.batch_idx, batch in self.epoch_batches(self.train_loader_x):
            data_time.update(time.time() - end)
            loss_summary = self.forward_backward(batch)
            batch_time.update(time.time() - end)
            losses.update(loss_summary)
            if loss_summary and "loss" in loss_summary:
                recent_losses.append((self.batch_idx, loss_summary["loss"]))

            # Loss values stay on the device between log lines: the host syncs only here.
            meet_freq = (self.batch_idx + 1) % self.cfg.TRAIN.PRINT_FREQ == 0
            only_few_batches = self.num_batches < self.cfg.TRAIN.PRINT_FREQ
            last_batch = (self.batch_idx + 1) == self.num_batches
            if meet_freq or only_few_batches or last_batch:
                self.check_finite_losses(recent_losses)
                recent_losses = []
            if meet_freq or only_few_batches:
                nb_remain = self.num_batches - self.batch_idx - 1
                nb_remain += (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * nb_remain)))
                info = [
                    f"epoch [{self.epoch + 1}/{self.max_epoch}]",
                    f"batch [{self.batch_idx + 1}/{self.num_batches}]",
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f})",
                    f"data {data_time.val:.3f} ({data_time.avg:.3f})",
                    f"{losses}",
                    f"lr {self.get_current_lr():.4e}",
                    f"eta {eta}",
                ]
                print(" ".join(info))
                n_iter = self.epoch * self.num_batches + self.batch_idx
                for name, meter in losses.meters.items():
                    self.write_scalar("train/" + name, float(meter.avg), n_iter)
                self.write_scalar("train/lr", self.get_current_lr(), n_iter)
            end = time.time()
            if signals.checkpoint_requested():  # a preemption checkpoint is written from finite weights only
                self.check_finite_losses(recent_losses)
                recent_losses = []
            self.after_batch()

    def check_finite_losses(self, recent_losses):
        """Stop with a clear message when a loss since the last check is NaN or infinite (one host sync).

        The check runs at the log lines and at the last batch of every epoch, so no checkpoint is ever written
        from diverged weights: the previous checkpoint stays the last one."""
        if not recent_losses:
            return
        values = torch.stack([torch.as_tensor(v, dtype=torch.float32).detach().reshape(()).float()
                              for _, v in recent_losses])
        bad = ~torch.isfinite(values)
        if not bool(bad.any()):
            return
        i = int(bad.nonzero()[0, 0])
        batch_idx, value = recent_losses[i][0], float(values[i])
        raise FloatingPointError(
            f"Loss is {value} at epoch {self.epoch + 1}/{self.max_epoch}, batch {batch_idx + 1}/{self.num_batches}"
            f": training diverged. Try a lower OPTIM.LR (now {self.get_current_lr():.4g}){self.divergence_hint()}; "
            "the checkpoints written so far are intact (rerun to resume from the last one)."
        )

    def divergence_hint(self):
        """More advice for the non-finite-loss message (trainers add their precision key)."""
        return ""

    def parse_batch_train(self, batch):
        input = batch["img"].to(self.device)
        label = batch["label"].to(self.device)
        domain = batch["domain"].to(self.device)
        return input, label, domain


class TrainerXU(SimpleTrainer):
    """Labelled + unlabelled data; not used by the CoOp family (kept for API compatibility)."""

    def run_epoch(self):
        raise NotImplementedError("TrainerXU is not implemented in this engine; use TrainerX")
