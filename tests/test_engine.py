"""The engine through its public Dassl API only: registries, a TrainerX subclass, optim builders,
checkpoints, resume, logs, and pickled ``Datum`` compatibility."""
import io
import os
import os.path as osp
import pickle
import re
import subprocess
import sys
from contextlib import redirect_stdout

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dassl.data.datasets import DATASET_REGISTRY, DatasetBase, Datum
from dassl.engine import TRAINER_REGISTRY, TrainerX, build_trainer
from dassl.optim import build_lr_scheduler, build_optimizer
from dassl.utils import load_pretrained_weights, mkdir_if_missing

from conftest import COLORS, write_image


@DATASET_REGISTRY.register()
class ToyColors(DatasetBase):
    """Four colour classes, written as images under ``<root>/toy_colors`` on first use."""

    dataset_dir = "toy_colors"

    def __init__(self, cfg):
        root = osp.join(osp.abspath(cfg.DATASET.ROOT), self.dataset_dir)
        splits = {"train": 6, "test": 3}
        data = {}
        for split, n in splits.items():
            items = []
            for label, (name, color) in enumerate(COLORS.items()):
                for i in range(n):
                    path = osp.join(root, split, name, f"{i}.jpg")
                    if not osp.exists(path):
                        write_image(path, color, seed=hash((split, label, i)) % 1000)
                    items.append(Datum(impath=path, label=label, classname=name))
            data[split] = items
        train = self.generate_fewshot_dataset(data["train"], num_shots=cfg.DATASET.NUM_SHOTS)
        super().__init__(train_x=train, val=data["test"], test=data["test"])


class PooledLinear(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.fc = nn.Linear(3 * 4 * 4, n_classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(x, 4).flatten(1))


@TRAINER_REGISTRY.register()
class ToyLinear(TrainerX):
    """A trainer written only against the Dassl API, as a CoOp-family trainer would be."""

    crash_after_epoch = None  # set to an epoch index to simulate a killed job

    def build_model(self):
        self.model = PooledLinear(self.num_classes)
        if self.cfg.MODEL.INIT_WEIGHTS:
            load_pretrained_weights(self.model, self.cfg.MODEL.INIT_WEIGHTS)
        self.model.to(self.device)
        self.optim = build_optimizer(self.model, self.cfg.OPTIM)
        self.sched = build_lr_scheduler(self.optim, self.cfg.OPTIM)
        self.register_model("linear", self.model, self.optim, self.sched)

    def forward_backward(self, batch):
        image, label = batch["img"].to(self.device), batch["label"].to(self.device)
        output = self.model(image)
        loss = F.cross_entropy(output, label)
        self.model_backward_and_update(loss)
        if (self.batch_idx + 1) == self.num_batches:
            self.update_lr()
        return {"loss": loss.item(), "acc": (output.argmax(1) == label).float().mean().item() * 100}

    def after_epoch(self):
        super().after_epoch()
        if self.crash_after_epoch is not None and self.epoch == self.crash_after_epoch:
            raise KeyboardInterrupt("simulated kill")


def toy_cfg(make_cfg, root, out, **extra):
    cfg = make_cfg()
    cfg.DATASET.ROOT = str(root)
    cfg.DATASET.NAME = "ToyColors"
    cfg.TRAINER.NAME = "ToyLinear"
    cfg.OUTPUT_DIR = str(out)
    cfg.SEED = 1
    cfg.INPUT.SIZE = (16, 16)
    cfg.INPUT.TRANSFORMS = ("random_resized_crop", "random_flip", "normalize")
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.TEST.BATCH_SIZE = 8
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.5
    cfg.OPTIM.MAX_EPOCH = 2
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.OPTIM.WARMUP_EPOCH = 1
    cfg.OPTIM.WARMUP_TYPE = "constant"
    cfg.OPTIM.WARMUP_CONS_LR = 0.1
    cfg.TRAIN.PRINT_FREQ = 3
    for k, v in extra.items():
        setattr(cfg, k, v)
    return cfg


def run_training(cfg, crash_after_epoch=None):
    from dassl.utils import set_random_seed

    set_random_seed(cfg.SEED)
    trainer = build_trainer(cfg)
    trainer.crash_after_epoch = crash_after_epoch
    buf = io.StringIO()
    with redirect_stdout(buf):
        try:
            trainer.train()
        except KeyboardInterrupt:
            pass
    return trainer, buf.getvalue()


def test_train_checkpoint_resume_equals_uninterrupted(make_cfg, tmp_path):
    cfg_a = toy_cfg(make_cfg, tmp_path / "data", tmp_path / "a")
    trainer_a, log_a = run_training(cfg_a)
    ckpt_dir = tmp_path / "a" / "linear"
    assert sorted(os.listdir(ckpt_dir)) == ["checkpoint", "model.pth.tar-2"]
    assert (ckpt_dir / "checkpoint").read_text() == "model.pth.tar-2\n"
    ckpt = torch.load(ckpt_dir / "model.pth.tar-2", weights_only=False)
    assert set(ckpt) >= {"state_dict", "epoch", "optimizer", "scheduler", "val_result"}
    assert ckpt["epoch"] == 2

    # Interrupted run: checkpoint every epoch, killed after epoch 1, then re-launched into the same dir.
    cfg_b = toy_cfg(make_cfg, tmp_path / "data", tmp_path / "b")
    cfg_b.TRAIN.CHECKPOINT_FREQ = 1
    _, log_b1 = run_training(cfg_b, crash_after_epoch=0)
    assert "model.pth.tar-1" in os.listdir(tmp_path / "b" / "linear")
    trainer_b, log_b2 = run_training(cfg_b)
    assert "Found checkpoint at" in log_b2 and "Previous epoch: 1" in log_b2
    assert "epoch [1/2]" not in log_b2 and "epoch [2/2]" in log_b2

    for (k, va), vb in zip(trainer_a.model.state_dict().items(), trainer_b.model.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    assert trainer_a.get_current_lr() == trainer_b.get_current_lr()
    acc_a = re.findall(r"\* accuracy: ([\d.]+)%", log_a)
    acc_b = re.findall(r"\* accuracy: ([\d.]+)%", log_b2)
    assert acc_a and acc_a == acc_b


def test_log_lines_and_result_block(make_cfg, tmp_path):
    cfg = toy_cfg(make_cfg, tmp_path / "data", tmp_path / "out")
    trainer, log = run_training(cfg)
    # 24 images, batch 4 -> 6 batches; PRINT_FREQ 3 -> batches 3 and 6 printed
    lines = [l for l in log.splitlines() if l.startswith("epoch [")]
    assert len(lines) == 4
    pat = (r"^epoch \[(\d+)/2\] batch \[(\d+)/6\] time \d+\.\d{3} \(\d+\.\d{3}\) data \d+\.\d{3} \(\d+\.\d{3}\) "
           r"loss \d+\.\d{4} \(\d+\.\d{4}\) acc \d+\.\d{4} \(\d+\.\d{4}\) lr (\S+) eta \d+:\d\d:\d\d$")
    parsed = [re.match(pat, l) for l in lines]
    assert all(parsed), lines
    # the last batch of epoch 1 already shows epoch 2's LR (= LR exactly after constant warmup)
    assert [p.group(3) for p in parsed] == ["1.0000e-01", "5.0000e-01", "5.0000e-01", "2.5000e-01"]
    tail = log[log.index("Finish training"):].splitlines()
    assert tail[:3] == ["Finish training", "Deploy the last-epoch model", "Evaluate on the *test* set"]
    assert tail[3] == "=> result"
    assert tail[4] == "* total: 12"
    m = re.match(r"\* correct: (\d+)", tail[5])
    correct = int(m.group(1))
    assert tail[6] == f"* accuracy: {100 * correct / 12:.1f}%"
    assert tail[7] == f"* error: {100 - 100 * correct / 12:.1f}%"
    assert re.match(r"\* macro_f1: \d+\.\d%", tail[8])
    assert re.match(r"Elapsed: \d+:\d\d:\d\d$", tail[9])
    assert "Checkpoint saved to " + osp.join(str(tmp_path / "out"), "linear", "model.pth.tar-2") in log


def test_load_pretrained_weights_and_load_model(make_cfg, tmp_path):
    cfg = toy_cfg(make_cfg, tmp_path / "data", tmp_path / "out")
    trainer, _ = run_training(cfg)
    ckpt = str(tmp_path / "out" / "linear" / "model.pth.tar-2")
    cfg2 = toy_cfg(make_cfg, tmp_path / "data", tmp_path / "out2")
    cfg2.MODEL.INIT_WEIGHTS = ckpt
    with redirect_stdout(io.StringIO()) as buf:
        trainer2 = build_trainer(cfg2)
    assert "Successfully loaded pretrained weights from" in buf.getvalue()
    torch.testing.assert_close(trainer2.model.fc.weight, trainer.model.fc.weight)

    trainer3 = build_trainer(toy_cfg(make_cfg, tmp_path / "data", tmp_path / "out3"))
    with redirect_stdout(io.StringIO()) as buf:
        trainer3.load_model(str(tmp_path / "out"), epoch=2)
    assert "val_result=None" in buf.getvalue()  # upstream crashed here (Dassl issue #56)
    torch.testing.assert_close(trainer3.model.fc.weight, trainer.model.fc.weight)
    with pytest.raises(FileNotFoundError, match=re.escape(osp.join(str(tmp_path / "out"), "linear", "model.pth.tar-7"))):
        trainer3.load_model(str(tmp_path / "out"), epoch=7)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous checkpoint and no partial file."""
    from dassl.utils import save_checkpoint

    state = {"state_dict": {"w": torch.ones(2)}, "epoch": 1, "optimizer": None, "scheduler": None, "val_result": None}
    save_checkpoint(dict(state), str(tmp_path))
    original = torch.save

    def broken_save(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(dict(state), str(tmp_path))
    monkeypatch.setattr(torch, "save", original)
    assert sorted(os.listdir(tmp_path)) == ["checkpoint", "model.pth.tar-1"]
    assert torch.load(tmp_path / "model.pth.tar-1", weights_only=False)["epoch"] == 1


def test_fewshot_generation_and_datum_pickle(make_cfg, tmp_path):
    """Same seed -> same shots; a pickled ``Datum`` refers to ``dassl.data.datasets.base_dataset.Datum``."""
    import random

    items = [Datum(impath=f"/x/{c}_{i}.jpg", label=l, classname=c) for l, c in enumerate("abc") for i in range(5)]
    base = DatasetBase(train_x=items)
    random.seed(3)
    shots1 = base.generate_fewshot_dataset(items, num_shots=2)
    random.seed(3)
    shots2 = base.generate_fewshot_dataset(items, num_shots=2)
    assert shots1 == shots2 and len(shots1) == 6
    # Dassl's algorithm by hand: per label in first-appearance order, random.sample(items_of_label, K)
    random.seed(3)
    expected = []
    for l in range(3):
        expected += random.sample([it for it in items if it.label == l], 2)
    assert shots1 == expected

    blob = pickle.dumps({"train": shots1})
    assert b"dassl.data.datasets.base_dataset" in blob and b"Datum" in blob
    loaded = pickle.loads(blob)["train"]
    assert type(loaded[0]).__module__ == "dassl.data.datasets.base_dataset"
    assert loaded[0].__dict__ == {"_impath": shots1[0].impath, "_label": shots1[0].label, "_domain": 0,
                                  "_classname": shots1[0].classname}


def test_unknown_trainer_and_dataset_names(make_cfg, tmp_path):
    cfg = toy_cfg(make_cfg, tmp_path / "data", tmp_path / "out")
    cfg.TRAINER.NAME = "ToyLinaer"
    with pytest.raises(ValueError, match=r"do you mean \[ToyLinear\]") as e:
        build_trainer(cfg)
    assert "ZeroshotCLIP" in str(e.value) or "ToyLinear" in str(e.value)
    cfg.TRAINER.NAME = "ToyLinear"
    cfg.DATASET.NAME = "ToyColours"
    with pytest.raises(ValueError, match=r"do you mean \[ToyColors\]"):
        build_trainer(cfg)


def test_registry_duplicate_and_force():
    from dassl.utils import Registry

    reg = Registry("X")

    @reg.register()
    class A:
        pass

    with pytest.raises(KeyError, match='already registered in "X"'):
        reg.register(A)
    reg.register(A, force=True)
    assert reg.registered_names() == ["A"] and reg.get("A") is A


def test_domain_and_class_samplers_compose_batches_as_dassl():
    from dassl.data.samplers import RandomClassSampler, RandomDomainSampler, SeqDomainSampler

    data = [Datum(impath=f"/x/{i}.jpg", label=i % 4, domain=i % 3) for i in range(36)]
    idxs = list(RandomDomainSampler(data, batch_size=6, n_domain=2))
    assert len(idxs) == len(set(idxs)) and len(idxs) % 6 == 0
    for b in range(0, len(idxs), 6):  # 2 domains x 3 items per batch
        doms = [data[i].domain for i in idxs[b:b + 6]]
        assert doms[:3] == [doms[0]] * 3 and doms[3:] == [doms[3]] * 3 and doms[0] != doms[3]
    idxs = list(SeqDomainSampler(data, batch_size=6))  # every domain, in order, 2 items each
    for b in range(0, len(idxs), 6):
        assert [data[i].domain for i in idxs[b:b + 6]] == [0, 0, 1, 1, 2, 2]
    idxs = list(RandomClassSampler(data, batch_size=8, n_ins=4))  # 2 classes x 4 items per batch
    for b in range(0, len(idxs), 8):
        labels = [data[i].label for i in idxs[b:b + 8]]
        assert labels[:4] == [labels[0]] * 4 and labels[4:] == [labels[4]] * 4
