"""Prompt-learning trainers on the ``tiny`` backbone: shared encoders, Prompt-OT's regulariser,
IVLP equivalence, frozen features, checkpoints."""
import io
import itertools
from contextlib import redirect_stdout

import pytest
import torch
import torch.nn.functional as F

import clip
from datasets.toy import write_coop_tree
from dassl.engine import build_trainer
from dassl.utils import set_random_seed

import trainers.coop  # noqa: F401
import trainers.ivlp  # noqa: F401
import trainers.promptot  # noqa: F401
import trainers.promptsrc  # noqa: F401
from trainers.ivlp import VLPromptLearner
from trainers.prompted_clip import map_state_dict
from trainers.promptsrc import gpa_weights


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    write_coop_tree(str(r), counts={"train": 4, "val": 1, "test": 2})
    return r


def make_trainer(make_cfg, root, out, trainer, **opts):
    cfg = make_cfg()
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.TRAINER.NAME = str(root), "OxfordPets", trainer
    cfg.OUTPUT_DIR, cfg.SEED = str(out), 1
    cfg.MODEL.BACKBONE.NAME = "tiny"
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH = "sgd", 0.005, 2
    for node in ("IVLP", "PROMPTOT", "PROMPTSRC"):
        cfg.TRAINER[node].PREC = "fp32"
        cfg.TRAINER[node].N_CTX_TEXT = cfg.TRAINER[node].N_CTX_VISION = 4
        cfg.TRAINER[node].PROMPT_DEPTH_TEXT = cfg.TRAINER[node].PROMPT_DEPTH_VISION = 2
    cfg.merge_from_list([x for kv in opts.items() for x in kv])
    set_random_seed(1)
    with redirect_stdout(io.StringIO()):
        return build_trainer(cfg)


def a_batch(trainer):
    torch.manual_seed(0)
    return next(iter(trainer.train_loader_x))


def brute_force_ot(cost):
    """min over permutations of mean_i C[i, sigma(i)] (exact OT with uniform marginals, B x B)."""
    n = cost.shape[0]
    return min(sum(cost[i, p[i]] for i in range(n)) / n for p in itertools.permutations(range(n)))


def test_promptot_loss_is_ivlp_loss_plus_lambda_times_exact_ot(make_cfg, root, tmp_path):
    ivlp = make_trainer(make_cfg, root, tmp_path / "i", "IVLP")
    pot = make_trainer(make_cfg, root, tmp_path / "p", "PromptOT", **{"TRAINER.PROMPTOT.LAMBDA": 10.0})
    pot0 = make_trainer(make_cfg, root, tmp_path / "p0", "PromptOT", **{"TRAINER.PROMPTOT.LAMBDA": 0.0})
    for a, b in zip(ivlp.model.prompt_learner.parameters(), pot.model.prompt_learner.parameters()):
        assert torch.equal(a, b)  # same seed, same prompt init
    batch = a_batch(ivlp)
    images, labels = batch["img"], batch["label"]
    assert len(labels) == 4
    loss_ivlp, _, _ = ivlp.compute_loss(images, labels)
    loss_pot0, _, _ = pot0.compute_loss(images, labels)
    loss_pot, summary, _ = pot.compute_loss(images, labels)
    assert loss_pot0.item() == loss_ivlp.item()  # lambda = 0 is IVLP exactly

    # Independent computation of the regulariser from plain feature math.
    m = pot.model
    with torch.no_grad():
        v = F.normalize(m.image_features(images), dim=-1)
        t = F.normalize(m.text_features(), dim=-1)[labels]
        plain = clip.load_clip_to_cpu("tiny").float()
        v0 = F.normalize(plain.encode_image(images), dim=-1)
        names = [n.replace("_", " ") for n in pot.dm.dataset.classnames]
        t0 = F.normalize(plain.encode_text(clip.tokenize([f"a photo of a {n}." for n in names])), dim=-1)[labels]
    z, z0 = torch.cat([v, t], 1).double(), torch.cat([v0, t0], 1).double()
    cost = 0.5 * ((z[:, None] - z0[None]) ** 2).sum(-1)
    ot = brute_force_ot(cost)
    assert summary["loss_ot"].item() == pytest.approx(ot.item(), rel=1e-4, abs=1e-7)
    assert loss_pot.item() == pytest.approx(loss_ivlp.item() + 10.0 * ot.item(), rel=1e-5)


@pytest.mark.parametrize("solver,extra", [("hungarian", {}), ("sinkhorn", {"TRAINER.PROMPTOT.OT_EPS": 0.001,
                                                                           "TRAINER.PROMPTOT.OT_ITERS": 2000})])
def test_other_solvers_agree_with_emd(make_cfg, root, tmp_path, solver, extra):
    emd = make_trainer(make_cfg, root, tmp_path / "e", "PromptOT")
    other = make_trainer(make_cfg, root, tmp_path / "o", "PromptOT", **{"TRAINER.PROMPTOT.OT_SOLVER": solver, **extra})
    batch = a_batch(emd)
    _, s_emd, _ = emd.compute_loss(batch["img"], batch["label"])
    _, s_other, _ = other.compute_loss(batch["img"], batch["label"])
    assert s_other["loss_ot"].item() == pytest.approx(s_emd["loss_ot"].item(), rel=2e-2, abs=1e-4)


def test_gradient_flows_through_cost_only(make_cfg, root, tmp_path):
    pot = make_trainer(make_cfg, root, tmp_path / "p", "PromptOT", **{"TRAINER.PROMPTOT.LAMBDA": 1.0})
    batch = a_batch(pot)
    loss, _, _ = pot.compute_loss(batch["img"], batch["label"])
    loss.backward()
    grads = {n: p.grad for n, p in pot.model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert all(p.grad is None for n, p in pot.model.named_parameters() if not p.requires_grad)


def test_frozen_features_equal_plain_clip(make_cfg, root, tmp_path):
    pot = make_trainer(make_cfg, root, tmp_path / "p", "PromptOT")
    plain = clip.load_clip_to_cpu("tiny").float()
    images = a_batch(pot)["img"]
    with torch.no_grad():
        torch.testing.assert_close(pot.model.frozen_image_features(images), plain.encode_image(images))
        names = [n.replace("_", " ") for n in pot.dm.dataset.classnames]
        ref = F.normalize(plain.encode_text(clip.tokenize([f"a photo of a {n}." for n in names])), dim=-1)
        torch.testing.assert_close(pot.zs_text_features(), ref)
        # and the prompted path really differs (prompts are active)
        assert not torch.allclose(pot.model.image_features(images), plain.encode_image(images))
    # no second copy of CLIP: parameter count = CLIP's + learnable prompts
    n_learn = sum(p.numel() for p in pot.model.parameters() if p.requires_grad)
    assert sum(p.numel() for p in pot.model.parameters()) == sum(p.numel() for p in plain.parameters()) + n_learn


def test_deep_prompts_replace_per_layer(make_cfg, root, tmp_path):
    """Changing the prompt of block 1 changes the output; a prompt beyond the depth does not exist."""
    ivlp = make_trainer(make_cfg, root, tmp_path / "i", "IVLP")
    pl = ivlp.model.prompt_learner
    assert len(pl.text_deep) == 1 and len(pl.vision_deep) == 1  # depth 2 -> blocks 1..1
    images = a_batch(ivlp)["img"]
    with torch.no_grad():
        before_v, before_t = ivlp.model.image_features(images), ivlp.model.text_features()
        # a random change (adding a constant would be invisible: LayerNorm removes the token's mean)
        gen = torch.Generator().manual_seed(0)
        pl.vision_deep[0].add_(torch.randn(pl.vision_deep[0].shape, generator=gen))
        pl.text_deep[0].add_(torch.randn(pl.text_deep[0].shape, generator=gen))
        assert not torch.allclose(ivlp.model.image_features(images), before_v)
        assert not torch.allclose(ivlp.model.text_features(), before_t)


def test_checkpoint_holds_learnable_tensors_and_upstream_names_load(make_cfg, root, tmp_path):
    pot = make_trainer(make_cfg, root, tmp_path / "p", "PromptOT")
    state = {k: v.clone() for k, v in pot.model_state_dict("VLPromptLearner").items()}
    assert set(state) == {n for n, p in pot.model.named_parameters() if p.requires_grad}
    # an upstream full-state checkpoint: CLIP weights + learnable tensors under PromptSRC's names
    upstream = {"image_encoder.conv1.weight": torch.zeros(1), "prompt_learner.ctx": state["prompt_learner.text.ctx"] + 1,
                "prompt_learner.token_prefix": torch.zeros(1),
                "image_encoder.VPT": state["prompt_learner.vision_ctx"] + 1,
                "image_encoder.transformer.resblocks.1.VPT_shallow": state["prompt_learner.vision_deep.0"] + 1,
                "text_encoder.transformer.resblocks.1.VPT_shallow": state["prompt_learner.text_deep.0"] + 1}
    assert set(map_state_dict(upstream, VLPromptLearner.UPSTREAM_KEY_MAP)) == set(state)
    pot.load_model_state("VLPromptLearner", upstream)
    for k, v in pot.model_state_dict("VLPromptLearner").items():
        torch.testing.assert_close(v, state[k] + 1)
    with pytest.raises(KeyError, match="lacks learnable tensors"):
        pot.load_model_state("VLPromptLearner", {"prompt_learner.text.ctx": state["prompt_learner.text.ctx"]})


def test_gpa_weights_formula():
    w = gpa_weights(20, 15, 1)
    assert sum(w) == pytest.approx(1.0)
    assert max(range(20), key=lambda i: w[i]) == 14  # epoch 15
    import math
    g = [math.exp(-0.5 * (e - 15) ** 2) for e in range(1, 21)]
    assert w == pytest.approx([x / sum(g) for x in g])


def test_coop_registers_prompt_learner_only(make_cfg, root, tmp_path):
    coop = make_trainer(make_cfg, root, tmp_path / "c", "CoOp", **{"TRAINER.COOP.N_CTX": 4,
                                                                   "TRAINER.COOP.PREC": "fp32"})
    assert coop.get_model_names() == ["prompt_learner"]
    assert set(coop.model_state_dict("prompt_learner")) == {"ctx"}
    batch = a_batch(coop)
    coop.batch_idx, coop.num_batches = 0, 2
    before = coop.model.prompt_learner.ctx.detach().clone()
    coop.set_model_mode("train")
    coop.forward_backward(batch)
    assert not torch.equal(before, coop.model.prompt_learner.ctx)


@pytest.mark.parametrize("prec", ["fp16", "bf16"])
def test_low_precision_keeps_fp32_master_prompts(make_cfg, root, tmp_path, prec, monkeypatch):
    """CLIP weights in fp16/bf16, prompts fp32; one training step runs and updates the prompts."""
    import trainers.prompt_trainer as pt

    monkeypatch.setattr(pt.PromptTrainer, "_effective_precision", lambda self: self.tcfg.PREC)
    ivlp = make_trainer(make_cfg, root, tmp_path / "i", "IVLP", **{"TRAINER.IVLP.PREC": prec})
    ivlp.prepare(training=True)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}[prec]
    assert ivlp.model.dtype == dtype
    assert all(p.dtype == torch.float32 for p in ivlp.model.prompt_learner.parameters())
    batch = a_batch(ivlp)
    ivlp.batch_idx, ivlp.num_batches = 0, 2
    before = ivlp.model.prompt_learner.text.ctx.detach().clone()
    summary = ivlp.forward_backward(batch)
    assert torch.isfinite(summary["loss"])
    assert not torch.equal(before, ivlp.model.prompt_learner.text.ctx)


def test_ot_regulariser_solvers_against_pot_and_sinkhorn_cap_warning(monkeypatch):
    """Prompt-OT's OT_SOLVER choices on plain costs (no trainer): hungarian and emd give POT's exact
    value; sinkhorn at its cap warns once, naming the config keys to raise."""
    import os
    import warnings

    import ot

    from trainers import optimal_transport as otm
    from trainers.promptot import ot_regulariser

    gen = torch.Generator().manual_seed(0)
    for B in (4, 8):  # the permutation search, then SciPy's linear_sum_assignment
        cost = torch.rand(B, B, generator=gen, dtype=torch.float64)
        ref = ot.emd2(ot.unif(B), ot.unif(B), cost.numpy())
        assert ot_regulariser(cost, "hungarian").item() == pytest.approx(ref, abs=1e-13)
        assert ot_regulariser(cost, "emd").item() == pytest.approx(ref, abs=1e-13)
    monkeypatch.setattr(otm, "_CAP_WARNED_SITES", set())
    cost = torch.rand(4, 4, generator=gen, dtype=torch.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ot_regulariser(cost, "sinkhorn", eps=1.0, iters=1000)  # converges: silent
        assert caught == []
        for _ in range(3):
            ot_regulariser(cost, "sinkhorn", eps=1e-3, iters=2)
    assert [w.category for w in caught] == [otm.SinkhornCapWarning]
    assert os.path.basename(caught[0].filename) == "promptot.py"  # the call site in the trainer
    assert "max_iter=2" in str(caught[0].message)
    assert "(TRAINER.PROMPTOT.OT_EPS / TRAINER.PROMPTOT.OT_ITERS)" in str(caught[0].message)
