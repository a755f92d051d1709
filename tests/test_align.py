"""ALIGN (upstream MMP) against an independent implementation of the released code's semantics (tiny backbone):
``bench/align_upstream.py`` (also the baseline of ``python -m bench align-eval``), written on the raw open_clip
modules of a fresh CLIP, never through ``trainers/``.
"""
import io
import itertools
from contextlib import redirect_stdout

import pytest
import torch
import torch.nn.functional as F

import clip
from test_optimal_transport import reference_upstream
from test_prompt_interface import (  # noqa: F401  (plain, root: fixtures)
    CLASSNAMES, assert_close, batch_of, build, load_upstream_checkpoint, perturb, plain, root, save_upstream_checkpoint,
)
from bench.align_upstream import align_reference, unit
from trainers import optimal_transport as otm
from trainers.align_ot import OTSettings

ALIGN_OPTS = {"TRAINER.ALIGN.PREC": "fp32", "TRAINER.ALIGN.TEXT_PROMPT_DEPTH": 2,
              "TRAINER.ALIGN.VISION_PROMPT_DEPTH": 2, "TRAINER.ALIGN.EPOCH_OVERRIDE": False}


def build_align(make_cfg, root, out, trainer="ALIGN", **opts):
    return build(make_cfg, root, out, trainer, **{**ALIGN_OPTS, **opts})


# ------------------------------------------------------------------------------------------- tests
def test_align_equals_upstream_semantics(make_cfg, root, tmp_path, plain):
    tr = build_align(make_cfg, root, tmp_path)
    pl = tr.model.prompt_learner
    assert pl.ctx.shape == (4, 2, 32) and pl.compound_prompts_text[0].shape == (4, 2, 32)
    assert pl.prompt_prefix == ["a photo of a", "X X", "X X", "X X"]
    with torch.no_grad():  # prompt 0 from "a photo" ("of a" stays fixed in its template)
        assert_close(pl.ctx[0].detach(), plain.token_embedding(clip.tokenize("a photo of a"))[0, 1:3], 0)
    perturb(pl)
    images, labels = batch_of(tr)
    loss, _, logits = tr.compute_loss(images, labels)
    lengths = set()
    with torch.no_grad():
        ref = align_reference(plain, pl, CLASSNAMES, images, stats=lengths)
    assert len(lengths) == 3  # class names of 1, 2 and 3 tokens: per-class token counts differ
    assert_close(logits.detach(), ref)
    assert loss.item() == pytest.approx(F.cross_entropy(ref, labels).item(), abs=1e-5)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pl.parameters())


def test_evaluation_encodes_class_prompts_once_with_equal_logits(make_cfg, root, tmp_path, plain, monkeypatch):
    tr = build_align(make_cfg, root, tmp_path, **{"DATALOADER.TEST.BATCH_SIZE": 5})
    perturb(tr.model.prompt_learner, seed=2)
    calls, real = [], tr.model.class_encodings
    monkeypatch.setattr(tr.model, "class_encodings", lambda p: (calls.append(1), real(p))[1])
    outs, real_inference = [], tr.model_inference
    monkeypatch.setattr(tr, "model_inference", lambda x: (outs.append((x, real_inference(x))), outs[-1][1])[1])
    with redirect_stdout(io.StringIO()):
        tr.test()
    assert len(outs) == 3 and len(calls) == 1  # 12 test images in batches of 5
    with torch.no_grad():
        for images, logits in outs:  # each batch as upstream scores it: text re-encoded, its own prompt-level call
            assert_close(logits, align_reference(plain, tr.model.prompt_learner, CLASSNAMES, images))


SWITCHES = {  # key: (value, OTSettings field changes)
    "TOKEN_TERM": ("distance", dict(token_term="distance")),
    "COST_FORM": ("convex", dict(cost_form="convex", beta=0.5)),
    "BETA": (10.0, dict(beta=10.0)),
    "LOGITS": ("full_cost", dict(logits="full_cost")),
    "HIERARCHICAL": (False, dict(hierarchical=False)),
    "TOKEN_SLICE": ("per_prompt", dict(token_slice="per_prompt")),
    "OT_EPS": (0.05, dict(eps=0.05)),
}


@pytest.mark.parametrize("key", sorted(SWITCHES))
def test_every_switch_equals_its_reference_and_changes_the_logits(make_cfg, root, tmp_path, plain, key):
    value, fields = SWITCHES[key]
    opts = {f"TRAINER.ALIGN.{key}": value}
    if key == "COST_FORM":
        opts["TRAINER.ALIGN.BETA"] = 0.5
    tr = build_align(make_cfg, root, tmp_path, **opts)
    pl = tr.model.prompt_learner
    perturb(pl, seed=5)
    images, labels = batch_of(tr)
    loss, _, logits = tr.compute_loss(images, labels)
    with torch.no_grad():
        ref = align_reference(plain, pl, CLASSNAMES, images, **fields)
        default = align_reference(plain, pl, CLASSNAMES, images)
    assert_close(logits.detach(), ref, 5e-6)
    assert (ref - default).abs().max() > 2e-5  # the switch changes the result (4x the tolerance)
    loss.backward()
    token_grad = key == "LOGITS"  # full_cost: the token similarities enter the gradient
    assert tr.model.prompt_learner.ctx.grad.abs().sum() > 0
    if token_grad:
        default_tr = build_align(make_cfg, root, tmp_path / "d")
        default_tr.model.prompt_learner.load_state_dict(pl.state_dict())
        default_tr.compute_loss(images, labels)[0].backward()
        assert (default_tr.model.prompt_learner.ctx.grad - pl.ctx.grad).abs().max() > 1e-6


@pytest.mark.parametrize("opts", [{"TRAINER.ALIGN.CLASS_CHUNK": 1}, {"TRAINER.ALIGN.OT_DTYPE": "fp32"},
                                  {"TRAINER.ALIGN.GRAD_CHECKPOINT": True}])
def test_memory_switches_change_nothing_else(make_cfg, root, tmp_path, opts):
    grads, logits = [], []
    for i, o in enumerate(({}, opts)):
        tr = build_align(make_cfg, root, tmp_path / str(i), **o)
        perturb(tr.model.prompt_learner, seed=6)
        images, labels = batch_of(tr)
        loss, _, out = tr.compute_loss(images, labels)
        loss.backward()
        logits.append(out.detach())
        grads.append({n: p.grad for n, p in tr.model.named_parameters() if p.requires_grad})
    assert_close(logits[0], logits[1], 1e-6)
    for k in grads[0]:
        assert_close(grads[0][k], grads[1][k], 1e-6)


def test_grad_checkpoint_switch_checkpoints_the_blocks(make_cfg, root, tmp_path, monkeypatch):
    import trainers.encoders as enc

    calls, real = [], enc.checkpoint
    monkeypatch.setattr(enc, "checkpoint", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    tr = build_align(make_cfg, root, tmp_path, **{"TRAINER.ALIGN.GRAD_CHECKPOINT": True})
    tr.compute_loss(*batch_of(tr))
    assert len(calls) == 4  # 2 text + 2 vision blocks


@pytest.mark.parametrize("token_off", ["HIERARCHICAL", "BETA"])
def test_one_prompt_set_without_token_term_equals_maple(make_cfg, root, tmp_path, token_off):
    maple = build(make_cfg, root, tmp_path / "maple", "MaPLe")
    perturb(maple.model.prompt_learner, seed=7)
    off = {"TRAINER.ALIGN.HIERARCHICAL": False} if token_off == "HIERARCHICAL" else {"TRAINER.ALIGN.BETA": 0.0}
    tr = build_align(make_cfg, root, tmp_path / "align", **{"TRAINER.ALIGN.TEXT_PROMPT_NUMBER": 1,
                                                           "TRAINER.ALIGN.VISION_PROMPT_NUMBER": 1, **off})
    src = maple.model.prompt_learner.state_dict()
    own = tr.model.prompt_learner.state_dict()
    tr.model.prompt_learner.load_state_dict({k: v.reshape(own[k].shape) for k, v in src.items()})
    images, labels = batch_of(tr)
    with torch.no_grad():
        assert_close(tr.compute_loss(images, labels)[2], maple.compute_loss(images, labels)[2], 1e-6)


def test_upstream_checkpoint_loads_and_evaluates_the_same(make_cfg, root, tmp_path, plain):
    """A full-state checkpoint as upstream's MMP writes it (CLIP + prompt learner + class buffers, fp16 ctx)."""
    src = build_align(make_cfg, root, tmp_path / "src")
    perturb(src.model.prompt_learner, seed=3)
    upstream = save_upstream_checkpoint(tmp_path / "upstream", src.model.prompt_learner, 20,
                                        {"prompt_learner.token_prefix": torch.zeros(16, 1, 32),
                                         "prompt_learner.token_suffix": torch.zeros(16, 74, 32)})
    tr = build_align(make_cfg, root, tmp_path / "dst", trainer="MMP")
    pl = load_upstream_checkpoint(tr, tmp_path / "upstream", 20, upstream)
    images, _ = batch_of(tr)
    with torch.no_grad():
        assert_close(tr.model(images), align_reference(plain, pl, CLASSNAMES, images))


def test_checkpoint_of_another_trainer_is_a_clear_error(make_cfg, root, tmp_path):
    maple = build(make_cfg, root, tmp_path / "maple", "MaPLe")
    maple.save_model(1, str(tmp_path / "maple_out"))
    tr = build_align(make_cfg, root, tmp_path / "align")
    with pytest.raises(ValueError, match="trained with --trainer MaPLe"), redirect_stdout(io.StringIO()):
        tr.load_model(str(tmp_path / "maple_out"), epoch=2)
    ivlp = build(make_cfg, root, tmp_path / "ivlp", "IVLP")
    ivlp.save_model(1, str(tmp_path / "ivlp_out"))
    with pytest.raises(FileNotFoundError, match="holds checkpoints of VLPromptLearner: another trainer's") as err:
        tr.load_model(str(tmp_path / "ivlp_out"), epoch=2)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("opts,match", [
    ({"TRAINER.ALIGN.VISION_PROMPT_NUMBER": 2}, r"TEXT_PROMPT_NUMBER \(4\) != VISION_PROMPT_NUMBER \(2\)"),
    ({"TRAINER.MMP.USECT": True}, "USECT True: upstream's conditional-transport path is dead code"),
    ({"TRAINER.ALIGN.TOKEN_TERM": "dist"}, "TRAINER.ALIGN.TOKEN_TERM must be one of"),
    ({"TRAINER.ALIGN.N_CTX": 3, "TRAINER.MMP.N_CTX": 4}, r"TRAINER.MMP.N_CTX \(4\) and TRAINER.ALIGN.N_CTX \(3\)"),
    ({"MODEL.BACKBONE.NAME": "RN50", "MODEL.BACKBONE.PRETRAINED": False}, "RN50: ALIGN needs a ViT backbone"),
])
def test_bad_input_stops_with_one_clear_line(make_cfg, root, tmp_path, opts, match):
    with pytest.raises(ValueError, match=match) as err:
        build_align(make_cfg, root, tmp_path, **opts)
    assert "\n" not in str(err.value)


def test_mmp_keys_are_aliases_and_the_epoch_override_is_upstreams(make_cfg, root, tmp_path):
    tr = build(make_cfg, root, tmp_path / "a", "MMP", **{"TRAINER.MMP.TEXT_PROMPT_NUMBER": 2,
                                                         "TRAINER.MMP.VISION_PROMPT_NUMBER": 2,
                                                         "TRAINER.MMP.PREC": "fp32", "DATASET.NUM_SHOTS": 1})
    assert tr.model.prompt_learner.ctx.shape[0] == 2 and tr.cfg.TRAINER.ALIGN.TEXT_PROMPT_NUMBER == 2
    assert tr.max_epoch == 30  # all classes, 1 shot (upstream setup_cfg)
    tr = build_align(make_cfg, root, tmp_path / "b", **{"DATASET.NUM_SHOTS": 1})
    assert tr.max_epoch == 2  # EPOCH_OVERRIDE False keeps the config's value
    tr = build_align(make_cfg, root, tmp_path / "c", **{"TRAINER.ALIGN.EPOCH_OVERRIDE": True,
                                                        "DATASET.SUBSAMPLE_CLASSES": "base"})
    assert tr.max_epoch == 2  # base-to-new runs keep the config's value


# ------------------------------------------------------------------------------ token-level Sinkhorn
def test_upstream_rule_drops_stopped_calls_with_equal_plans(monkeypatch):
    """Calls that stop early leave the iterated batch; every call's plan and count equal its own loop."""
    gen = torch.Generator().manual_seed(12)
    G, MN, P, L = 24, 4, 30, 9
    spread = torch.cat([torch.full((20,), 3.0), torch.linspace(0.3, 0.6, 4)])[:, None, None, None]  # 20 stop at 2
    cost = (1 - torch.rand(G, MN, P, L, generator=gen) * spread).double()
    takes, real = [], otm._take
    monkeypatch.setattr(otm, "_take", lambda *a: (takes.append(1), real(*a))[1])
    plan, log = otm.sinkhorn(cost, eps=0.1, stop_rule="upstream", call_dims=1, log=True)
    assert takes  # the batch was compacted
    for g in range(G):
        ref, it, _ = reference_upstream(torch.exp(-cost[g] / 0.1), torch.full((MN, P), 1 / P, dtype=torch.float64),
                                        torch.full((MN, L), 1 / L, dtype=torch.float64))
        assert (log["n_iter"][g] == it).all()
        assert (plan[g] - ref).abs().max() < 1e-12
    assert len(set(log["n_iter"][:, 0].tolist())) > 1


def test_fp16_token_level_follows_upstreams_fp16_loop():
    """``OT_DTYPE model`` under fp16: the iterations run in fp16 as upstream's (same stop decisions)."""
    gen = torch.Generator().manual_seed(3)
    G, MN, P, L = 6, 4, 20, 7
    sim = (torch.rand(G, MN, P, L, generator=gen) * 0.6 + 0.2).half()
    plan, log = otm.sinkhorn(1 - sim, eps=0.1, stop_rule="upstream", call_dims=1, log=True,
                             compute_dtype=torch.float16)
    assert plan.dtype == torch.float16
    for g in range(G):
        K = torch.exp(-(1 - sim[g]) / 0.1)
        ref, it, _ = reference_upstream(K, torch.full((MN, P), 1 / P, dtype=torch.float16),
                                        torch.full((MN, L), 1 / L, dtype=torch.float16))
        assert (log["n_iter"][g] == it).all()
        assert (plan[g].float() - ref.float()).abs().max() < 4e-3 * ref.float().max()  # a few fp16 steps
    fp32 = otm.sinkhorn((1 - sim).float(), eps=0.1, stop_rule="upstream", call_dims=1)
    assert (fp32 - plan.float()).abs().max() > 0


def test_token_level_stops_per_image_and_class_as_upstreams_loop():
    """The token level on features whose pairs need different iteration counts: one call per (image, class)."""
    from trainers.align_ot import text_token_sets, token_level

    gen = torch.Generator().manual_seed(9)
    B, C, M, P, E, Lmax = 3, 5, 2, 12, 8, 6
    shared = torch.randn(E, generator=gen)
    x = unit(torch.randn(B, M, P, E, generator=gen) + 2.0 * shared)
    # classes from close to the image tokens (kernel far from underflow: few iterations) to far (many)
    y = unit(torch.stack([torch.randn(M, Lmax, E, generator=gen) + k * shared for k in (3.0, 1.5, 0.0, -1.5, -3)]))
    eot = torch.tensor([[6, 5], [4, 6], [7, 3], [5, 5], [6, 6]])  # prompt 0's EOT: set lengths 5, 3, 6, 4, 5
    tokens, lengths = text_token_sets(y, eot, "prompt0_eot")
    term = token_level(x, tokens, lengths, OTSettings())
    iters = set()
    for b, c in itertools.product(range(B), range(C)):
        L = int(eot[c, 0]) - 1
        sim = torch.einsum("vnd,tld->vtnl", x[b], unit(y[c, :, :L])).reshape(M * M, P, L)
        K = torch.exp(-(1 - sim) / 0.1)
        T, it, _ = reference_upstream(K, torch.full((M * M, P), 1 / P), torch.full((M * M, L), 1 / L))
        iters.add(it)
        assert_close(term[b, c], (T * sim).sum((1, 2)).view(M, M), 1e-6)
    assert len(iters) > 1


def test_bench_align_eval_runs_both_sides_with_equal_logits(tmp_path):
    import json

    from bench.align_eval import main

    out = tmp_path / "r.json"
    with redirect_stdout(io.StringIO()):
        assert main(["--backbone", "tiny", "--classes", "3", "--batch", "2", "--batches", "1", "--repeat", "1",
                     "--device", "cpu", "--json", str(out)]) == 0
    row = json.loads(out.read_text())
    assert row["max_logit_diff"] <= 1e-5 and row["token_max_plan_diff"] <= 1e-6
    assert row["ours_s_per_batch"] > 0 and row["upstream_s_per_batch"] > 0 and row["token_iters_max"] >= 1
