"""LR schedules: the per-epoch sequence equals Dassl's formula (``dassl/optim/lr_scheduler.py``: cosine after a constant warm-up), also across a resume."""
import math

import pytest
import torch

from dassl.optim import build_lr_scheduler, build_optimizer


def expected_lr(k, lr, T, cons_lr):
    """Spec formula, 1-based epoch k: warmup constant at epoch 1, then recounted cosine."""
    if k == 1:
        return cons_lr
    return lr * 0.5 * (1 + math.cos(math.pi * (k - 2) / T))


def run_schedule(optim_cfg, n_epochs, resume_at=None):
    param = torch.nn.Parameter(torch.zeros(3))
    optim = build_optimizer([param], optim_cfg)
    sched = build_lr_scheduler(optim, optim_cfg)
    lrs = []
    for epoch in range(n_epochs):
        if resume_at is not None and epoch == resume_at:
            # What a resume does: fresh objects, then load the saved states.
            opt_state, sch_state = optim.state_dict(), sched.state_dict()
            param = torch.nn.Parameter(torch.zeros(3))
            optim = build_optimizer([param], optim_cfg)
            sched = build_lr_scheduler(optim, optim_cfg)
            optim.load_state_dict(opt_state)
            sched.load_state_dict(sch_state)
        lrs.append(optim.param_groups[0]["lr"])
        param.grad = torch.ones(3)
        optim.step()
        sched.step()  # the trainers' update_lr() at the last batch
    return lrs


@pytest.mark.parametrize("lr,T,cons", [(0.0025, 20, 1e-5), (0.005, 40, 1e-4)])
def test_cosine_constant_warmup_matches_formula(make_cfg, lr, T, cons):
    cfg = make_cfg()
    o = cfg.OPTIM
    o.NAME, o.LR, o.MAX_EPOCH, o.LR_SCHEDULER = "sgd", lr, T, "cosine"
    o.WARMUP_EPOCH, o.WARMUP_TYPE, o.WARMUP_CONS_LR = 1, "constant", cons
    lrs = run_schedule(o, T)
    for k in range(1, T + 1):
        assert lrs[k - 1] == pytest.approx(expected_lr(k, lr, T, cons), rel=1e-12), k


def test_spec_reference_values(make_cfg):
    """The per-epoch LRs of Prompt-OT's released config (computed from the cosine formula), to 4 significant digits."""
    cfg = make_cfg()
    o = cfg.OPTIM
    o.NAME, o.LR, o.MAX_EPOCH, o.LR_SCHEDULER = "sgd", 0.005, 40, "cosine"
    o.WARMUP_EPOCH, o.WARMUP_TYPE, o.WARMUP_CONS_LR = 1, "constant", 1e-4
    lrs = run_schedule(o, 40)
    table = {1: 1.0000e-04, 2: 5.0000e-03, 3: 4.9923e-03, 10: 4.5225e-03, 20: 2.8911e-03, 31: 8.7638e-04,
             40: 3.0779e-05}
    for k, v in table.items():
        assert f"{lrs[k - 1]:.4e}" == f"{v:.4e}"


@pytest.mark.parametrize("resume_at", [1, 2, 7])
def test_resumed_warmup_schedule_equals_uninterrupted(make_cfg, resume_at):
    """Upstream bug (Dassl.pytorch's ``_BaseWarmupScheduler``): after a resume the LR no longer reached the live optimizer."""
    cfg = make_cfg()
    o = cfg.OPTIM
    o.NAME, o.LR, o.MAX_EPOCH, o.LR_SCHEDULER = "sgd", 0.0025, 10, "cosine"
    o.WARMUP_EPOCH, o.WARMUP_TYPE, o.WARMUP_CONS_LR = 1, "constant", 1e-5
    assert run_schedule(o, 10, resume_at=resume_at) == run_schedule(o, 10)


def test_linear_warmup_and_no_warmup(make_cfg):
    cfg = make_cfg()
    o = cfg.OPTIM
    o.NAME, o.LR, o.MAX_EPOCH, o.LR_SCHEDULER = "adam", 0.01, 10, "cosine"
    o.WARMUP_EPOCH = -1
    lrs = run_schedule(o, 10)
    assert lrs == pytest.approx([0.01 * 0.5 * (1 + math.cos(math.pi * (k - 1) / 10)) for k in range(1, 11)])
    o.WARMUP_EPOCH, o.WARMUP_TYPE, o.WARMUP_MIN_LR = 2, "linear", 1e-5
    lrs = run_schedule(o, 4)
    # step 0: min_lr; step 1: lr * 1/2; then the cosine's untouched LR, then its first step
    assert lrs[:3] == pytest.approx([1e-5, 0.005, 0.01])
    assert lrs[3] == pytest.approx(0.01 * 0.5 * (1 + math.cos(math.pi / 10)))


def test_bad_scheduler_and_optimizer_names(make_cfg):
    cfg = make_cfg()
    cfg.OPTIM.NAME = "sgdd"
    with pytest.raises(ValueError, match="sgdd"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.OPTIM)
    cfg.OPTIM.NAME, cfg.OPTIM.LR_SCHEDULER = "sgd", "cosinus"
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg.OPTIM)
    with pytest.raises(ValueError, match="cosinus"):
        build_lr_scheduler(opt, cfg.OPTIM)
