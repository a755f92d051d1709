"""The prompt interface against independent implementations of the upstream semantics (tiny backbone, fp32).

The references below are written from the released code's semantics, on the raw open_clip modules of a
fresh CLIP (same weights), never through ``trainers/``: full-length (77-token) text sequences whose context
positions are replaced, every block run by hand with deep prompts replaced, the EOT / class-token features.
"""
import io
import math
from contextlib import redirect_stdout

import pytest
import torch
import torch.nn.functional as F

import clip
import trainers  # noqa: F401  (registers every trainer)
from datasets.toy import write_coop_tree
from dassl.engine import build_trainer
from dassl.utils import set_random_seed
from trainers.prompted_clip import PromptedCLIP
from trainers.prompts import TextContext
from trainers.templates import IMAGENET_TEMPLATES

CLASSNAMES = ["red", "green_apple", "blue whale shark", "yellow"]  # names of 1, 2 and 3 tokens
NODES = ("IVLP", "PROMPTOT", "PROMPTSRC", "MAPLE", "COOP", "COCOOP")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tmp_path_factory.mktemp("data")
    write_coop_tree(str(r), classnames=CLASSNAMES, counts={"train": 2, "val": 1, "test": 3})
    return r


def build(make_cfg, root, out, trainer, **opts):
    cfg = make_cfg()
    cfg.DATASET.ROOT, cfg.DATASET.NAME, cfg.TRAINER.NAME = str(root), "OxfordPets", trainer
    cfg.OUTPUT_DIR, cfg.SEED = str(out), 1
    cfg.MODEL.BACKBONE.NAME = "tiny"
    cfg.DATALOADER.TRAIN_X.BATCH_SIZE = 4
    cfg.DATALOADER.TEST.BATCH_SIZE = 5
    cfg.OPTIM.NAME, cfg.OPTIM.LR, cfg.OPTIM.MAX_EPOCH = "sgd", 0.05, 2
    for node in NODES:
        cfg.TRAINER[node].PREC = "fp32"
    for node in ("IVLP", "PROMPTOT", "PROMPTSRC"):
        cfg.TRAINER[node].PROMPT_DEPTH_TEXT = cfg.TRAINER[node].PROMPT_DEPTH_VISION = 2
    cfg.TRAINER.MAPLE.PROMPT_DEPTH = 2
    cfg.merge_from_list([x for kv in opts.items() for x in kv])
    set_random_seed(1)
    with redirect_stdout(io.StringIO()):
        return build_trainer(cfg)


def batch_of(trainer):
    torch.manual_seed(0)
    b = next(iter(trainer.train_loader_x))
    return b["img"], b["label"]


def perturb(module, scale=0.1, seed=0):
    """Move every learnable tensor away from its initialisation (so a mix-up of tensors cannot pass)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=gen) * scale)


@pytest.fixture(scope="module")
def plain():
    return clip.load_clip_to_cpu("tiny").float().eval()


def names():
    return [c.replace("_", " ") for c in CLASSNAMES]


# ------------------------------------------------------------------------------------- references
def ref_text_from_embeddings(m, x, eot, n_ctx=0, deep=(), all_tokens=False):
    """Upstream text tower: ``x [R, 77, D]`` embeddings, positions ``1..n_ctx`` replaced in blocks 1..len(deep);
    the EOT features, or with ``all_tokens`` every projected token ``[R, 77, E]``."""
    x = x + m.positional_embedding
    for i, block in enumerate(m.transformer.resblocks):
        if 1 <= i <= len(deep):
            x = torch.cat([x[:, :1], deep[i - 1].expand(x.shape[0], -1, -1), x[:, 1 + n_ctx:]], dim=1)
        x = block(x, attn_mask=m.attn_mask)
    x = m.ln_final(x)
    if all_tokens:
        return x @ m.text_projection
    return x[torch.arange(x.shape[0]), eot] @ m.text_projection


def ref_text(m, texts, n_ctx, ctx, deep=(), all_tokens=False):
    """Tokenise ``texts`` (full 77 positions), put ``ctx`` ([n, D] or per row [R, n, D]) at 1..n_ctx."""
    tokens = clip.tokenize(texts)
    x = m.token_embedding(tokens)
    ctx = ctx.expand(len(texts), -1, -1) if ctx.dim() == 2 else ctx
    x = torch.cat([x[:, :1], ctx, x[:, 1 + n_ctx:]], dim=1)
    return ref_text_from_embeddings(m, x, tokens.argmax(-1), n_ctx, deep, all_tokens)


def ref_image(m, images, vctx=None, deep=()):
    """Upstream IVLP / MaPLe vision tower: prompts appended after CLS + patches before ln_pre, the last n_v
    tokens replaced in blocks 1..len(deep); class token after ln_post, times proj."""
    v = m.visual
    x = v.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([v.class_embedding.expand(x.shape[0], 1, -1), x], dim=1) + v.positional_embedding
    n_v = 0 if vctx is None else vctx.shape[0]
    if n_v:
        x = torch.cat([x, vctx.expand(x.shape[0], -1, -1)], dim=1)
    x = v.ln_pre(x)
    for i, block in enumerate(v.transformer.resblocks):
        if 1 <= i <= len(deep):
            x = torch.cat([x[:, :-n_v], deep[i - 1].expand(x.shape[0], -1, -1)], dim=1)
        x = block(x)
    return v.ln_post(x[:, 0]) @ v.proj


def cos_logits(m, image, text):
    return m.logit_scale.exp() * F.normalize(image, dim=-1) @ F.normalize(text, dim=-1).t()


def linear(layer, x):
    return x @ layer.weight.t() + layer.bias


def assert_close(a, b, tol=1e-5):
    torch.testing.assert_close(a, b, rtol=0, atol=tol)


# -------------------------------------------------------------------------------------------- MaPLe
def maple_reference(m, pl, images):
    """MaPLe: text "[SOS] [ctx] of a {class}." with compound text prompts; vision prompts = couplings."""
    texts = [f"a photo of a {n}." for n in names()]
    deep_t = list(pl.compound_prompts_text)
    t = ref_text(m, texts, 2, pl.ctx, deep_t)
    v = ref_image(m, images, linear(pl.proj, pl.ctx),
                  [linear(f, p) for f, p in zip(pl.compound_prompt_projections, deep_t)])
    return cos_logits(m, v, t)


def test_maple_equals_upstream_semantics(make_cfg, root, tmp_path, plain):
    tr = build(make_cfg, root, tmp_path, "MaPLe")
    pl = tr.model.prompt_learner
    # upstream initialisation: ctx = embeddings of "a photo"; the couplings start equal (cloned layer)
    with torch.no_grad():
        init = plain.token_embedding(clip.tokenize("a photo of a"))[0, 1:3]
    assert_close(pl.ctx.detach(), init, 0)
    assert len(pl.compound_prompt_projections) == 1 and pl.proj.weight.shape == (64, 32)
    perturb(pl)
    images, labels = batch_of(tr)
    loss, _, logits = tr.compute_loss(images, labels)
    with torch.no_grad():
        ref = maple_reference(plain, pl, images)
    assert_close(logits.detach(), ref)
    assert loss.item() == pytest.approx(F.cross_entropy(ref, labels).item(), abs=1e-5)


def save_upstream_checkpoint(directory, learner, epoch, extra):
    """A full-state checkpoint as MaPLe / ALIGN write it: the prompt learner (fp16), ``extra`` (class buffers)
    and frozen CLIP tensors, under ``MultiModalPromptLearner/``. Returns its state dict."""
    upstream = {f"prompt_learner.{k}": v.detach().half() for k, v in learner.state_dict().items()}
    upstream.update({"image_encoder.conv1.weight": torch.zeros(1), "text_encoder.positional_embedding": torch.zeros(1),
                     "logit_scale": torch.zeros(()), **extra})
    folder = directory / "MultiModalPromptLearner"
    folder.mkdir(parents=True)
    torch.save({"state_dict": upstream, "epoch": epoch, "optimizer": None, "scheduler": None},
               folder / f"model.pth.tar-{epoch}")
    return upstream


def load_upstream_checkpoint(trainer, directory, epoch, upstream):
    """Load it into ``trainer``; every learnable tensor must equal the checkpoint's. Returns the learner."""
    with redirect_stdout(io.StringIO()):
        trainer.load_model(str(directory), epoch=epoch)
    pl = trainer.model.prompt_learner
    for k, v in pl.state_dict().items():
        assert_close(v, upstream[f"prompt_learner.{k}"].float(), 0)
    return pl


def test_maple_upstream_checkpoint_loads(make_cfg, root, tmp_path, plain):
    """A full-state checkpoint as MaPLe writes it (CLIP + prompt learner + class buffers) loads unchanged."""
    src = build(make_cfg, root, tmp_path / "src", "MaPLe")
    perturb(src.model.prompt_learner, seed=3)
    upstream = save_upstream_checkpoint(tmp_path / "upstream", src.model.prompt_learner, 5,
                                        {"prompt_learner.token_prefix": torch.zeros(4, 1, 32)})
    tr = build(make_cfg, root, tmp_path / "dst", "MaPLe")
    pl = load_upstream_checkpoint(tr, tmp_path / "upstream", 5, upstream)
    images, _ = batch_of(tr)
    with torch.no_grad():
        assert_close(tr.model(images), maple_reference(plain, pl, images))


# ------------------------------------------------------------------------------------------- CoCoOp
@pytest.mark.parametrize("chunk", [0, 3])
def test_cocoop_equals_upstream_semantics(make_cfg, root, tmp_path, plain, chunk):
    tr = build(make_cfg, root, tmp_path, "CoCoOp", **{"TRAINER.COCOOP.CTX_INIT": "a photo of a",
                                                      "TRAINER.COCOOP.CLASS_CHUNK": chunk})
    pl = tr.model.prompt_learner
    assert pl.ctx.shape == (4, 32) and pl.meta_net.linear1.weight.shape == (48 // 16, 48)
    perturb(pl)
    images, labels = batch_of(tr)
    loss, _, logits = tr.compute_loss(images, labels)
    texts = [f"a photo of a {n}." for n in names()]
    rows = []
    with torch.no_grad():
        for b in range(images.shape[0]):  # upstream: one text-encoder call per image
            f = F.normalize(plain.encode_image(images[b:b + 1]), dim=-1)
            bias = linear(pl.meta_net.linear2, torch.relu(linear(pl.meta_net.linear1, f)))
            t = ref_text(plain, texts, 4, pl.ctx + bias)
            rows.append(cos_logits(plain, f, t))
    ref = torch.cat(rows)
    assert_close(logits.detach(), ref)
    assert loss.item() == pytest.approx(F.cross_entropy(ref, labels).item(), abs=1e-5)


# --------------------------------------------------------------------------------- IVLP and CTX_INIT
def ivlp_reference(m, pl, images, prefix, n_ctx):
    texts = [f"{prefix} {n}." for n in names()]
    t = ref_text(m, texts, n_ctx, pl.text.ctx, list(pl.text_deep))
    v = ref_image(m, images, pl.vision_ctx, list(pl.vision_deep))
    return cos_logits(m, v, t)


def test_ivlp_first_n_ctx_init_words_equal_upstream(make_cfg, root, tmp_path, plain):
    """N_CTX_TEXT 2 + "a photo of a": ctx = "a photo" (learnable), "of a" stays as fixed tokens."""
    tr = build(make_cfg, root, tmp_path, "IVLP", **{"TRAINER.IVLP.N_CTX_TEXT": 2, "TRAINER.IVLP.N_CTX_VISION": 2})
    pl = tr.model.prompt_learner
    with torch.no_grad():
        assert_close(pl.text.ctx, plain.token_embedding(clip.tokenize("a photo of a"))[0, 1:3], 0)
    perturb(pl)
    images, labels = batch_of(tr)
    loss, _, logits = tr.compute_loss(images, labels)
    with torch.no_grad():
        ref = ivlp_reference(plain, pl, images, "a photo of a", 2)
    assert_close(logits.detach(), ref)
    assert loss.item() == pytest.approx(F.cross_entropy(ref, labels).item(), abs=1e-5)


def test_ctx_init_longer_than_the_words_is_a_clear_error(make_cfg, root, tmp_path):
    with pytest.raises(ValueError, match="CTX_INIT 'a photo' has 2 tokens but N_CTX is 3"):
        build(make_cfg, root, tmp_path, "IVLP", **{"TRAINER.IVLP.N_CTX_TEXT": 3, "TRAINER.IVLP.CTX_INIT": "a photo"})


@pytest.mark.parametrize("position,csc", [("end", False), ("end", True), ("middle", False), ("middle", True),
                                          ("front", False), ("front", True)])
def test_coop_positions_and_class_specific_context(make_cfg, root, tmp_path, plain, position, csc):
    n = 4
    tr = build(make_cfg, root, tmp_path, "CoOp", **{"TRAINER.COOP.N_CTX": n, "TRAINER.COOP.CSC": csc,
                                                    "TRAINER.COOP.CLASS_TOKEN_POSITION": position})
    pl = tr.model.prompt_learner
    assert pl.ctx.shape == ((4, n, 32) if csc else (n, 32))
    images, labels = batch_of(tr)
    _, _, logits = tr.compute_loss(images, labels)
    rows, eots = [], []
    with torch.no_grad():
        for c, name in enumerate(names()):
            ctx = pl.ctx[c] if csc else pl.ctx
            name_ids = clip.tokenize(name)[0]
            k = int((name_ids != 0).sum()) - 2
            tokens = clip.tokenize(name + ".")[0]  # SOS name . EOT pad
            emb = plain.token_embedding(tokens)
            sos, name_emb, rest = emb[:1], emb[1:1 + k], emb[1 + k:77 - n]
            parts = {"end": [sos, ctx, name_emb, rest], "front": [sos, name_emb, ctx, rest],
                     "middle": [sos, ctx[:n // 2], name_emb, ctx[n // 2:], rest]}[position]
            rows.append(torch.cat(parts))
            eots.append(int(tokens.argmax()) + n)
        t = ref_text_from_embeddings(plain, torch.stack(rows), torch.tensor(eots))
        ref = cos_logits(plain, plain.encode_image(images), t)
    assert_close(logits.detach(), ref)


# ------------------------------------------------------------------------------- block-input hooks
def capture_block_inputs(blocks):
    """Forward pre-hooks recording every call's input per block index."""
    seen = {i: [] for i in range(len(blocks))}
    handles = [b.register_forward_pre_hook(lambda mod, args, i=i: seen[i].append(args[0].detach().clone()))
               for i, b in enumerate(blocks)]
    return seen, handles


@pytest.mark.parametrize("trainer", ["IVLP", "MaPLe", "PromptSRC"])
def test_block_inputs_hold_deep_prompts_and_untouched_class_tokens(make_cfg, root, tmp_path, plain, trainer):
    tr = build(make_cfg, root, tmp_path, trainer)
    tr.prepare(training=True)  # frozen targets first: only the training step is recorded
    pl = tr.model.prompt_learner
    perturb(pl)
    prompts = pl()
    n_ctx = prompts.class_tokens.n_ctx
    t_seen, th = capture_block_inputs(tr.model.text_encoder.transformer.resblocks)
    v_seen, vh = capture_block_inputs(tr.model.image_encoder.visual.transformer.resblocks)
    images, labels = batch_of(tr)
    tr.compute_loss(images, labels)
    for h in th + vh:
        h.remove()
    n_tokens = 1 + (224 // 32) ** 2
    for i in range(1, len(tr.model.text_encoder.transformer.resblocks)):
        (x,) = t_seen[i]  # one prompted text pass
        if i <= len(prompts.text_deep):
            assert torch.equal(x[:, 1:1 + n_ctx], prompts.text_deep[i - 1].detach().expand(len(CLASSNAMES), -1, -1))
        prompted = [x for x in v_seen[i] if x.shape[1] > n_tokens]
        assert len(prompted) == 1
        if i <= len(prompts.vision_deep):
            assert torch.equal(prompted[0][:, n_tokens:],
                               prompts.vision_deep[i - 1].detach().expand(images.shape[0], -1, -1))
    # block 0: context after SOS, and every class-name token exactly CLIP's embedding + position
    (x0,) = t_seen[0]
    pos = plain.positional_embedding
    assert_close(x0[:, 1:1 + n_ctx], (prompts.text_ctx.detach() + pos[1:1 + n_ctx]).expand(len(CLASSNAMES), -1, -1), 1e-6)
    prefix = prompts.class_tokens.prefixes[0]
    for c, name in enumerate(names()):
        full = clip.tokenize(f"{prefix} {name}.")[0]
        start = 1 + int((clip.tokenize(prefix)[0] != 0).sum()) - 2
        k = int((clip.tokenize(name)[0] != 0).sum()) - 2
        with torch.no_grad():
            expected = plain.token_embedding(full[start:start + k]) + pos[start:start + k]
        assert_close(x0[c, start:start + k], expected, 1e-6)


# ---------------------------------------------------------------------------------------- PromptSRC
def test_promptsrc_losses_equal_independent_computation(make_cfg, root, tmp_path, plain):
    tr = build(make_cfg, root, tmp_path, "PromptSRC")
    pl = tr.model.prompt_learner
    perturb(pl)
    images, labels = batch_of(tr)
    loss, summary, logits = tr.compute_loss(images, labels)
    with torch.no_grad():
        t = ref_text(plain, [f"a photo of a {n}." for n in names()], 4, pl.text.ctx, list(pl.text_deep))
        v = ref_image(plain, images, pl.vision_ctx, list(pl.vision_deep))
        raw = torch.stack([plain.encode_text(clip.tokenize([tpl.format(n) for n in names()]))
                           for tpl in IMAGENET_TEMPLATES]).mean(0)  # upstream: mean of raw features, then norm
        t0 = F.normalize(raw, dim=-1)
        v0 = plain.encode_image(images)
        ref_logits = cos_logits(plain, v, t)
        zs_logits = cos_logits(plain, v0, t0)
        p0, logp = zs_logits.softmax(1), ref_logits.log_softmax(1)
        kl = (p0 * (p0.log() - logp)).sum() / ref_logits.numel()
        l_text = 25 * (F.normalize(t, dim=-1) - t0).abs().mean()
        l_image = 10 * (F.normalize(v, dim=-1) - F.normalize(v0, dim=-1)).abs().mean()
        ce = F.cross_entropy(ref_logits, labels)
    assert_close(logits.detach(), ref_logits)
    assert summary["loss_ce"].item() == pytest.approx(ce.item(), abs=1e-5)
    assert summary["loss_scl"].item() == pytest.approx((kl + l_text + l_image).item(), abs=1e-5)
    assert loss.item() == pytest.approx((ce + kl + l_text + l_image).item(), abs=1e-5)
    # the other averaging order differs (a switch), and is what it says
    other = build(make_cfg, root, tmp_path / "n", "PromptSRC", **{"TRAINER.PROMPTSRC.TEXT_TARGET_MEAN": "normalized"})
    with torch.no_grad():
        norm_mean = F.normalize(torch.stack([F.normalize(plain.encode_text(clip.tokenize([tpl.format(n) for n in names()])),
                                                         dim=-1) for tpl in IMAGENET_TEMPLATES]).mean(0), dim=-1)
    assert_close(other.zs_text_features(), norm_mean)
    assert_close(tr.zs_text_features(), t0)
    assert not torch.allclose(norm_mean, t0, atol=1e-6)


def train_quietly(tr):
    with redirect_stdout(io.StringIO()):
        tr.train()


def learnable(tr):
    return {k: v.detach().clone() for k, v in tr.model.named_parameters() if v.requires_grad}


GPA_OPTS = {"OPTIM.MAX_EPOCH": 3, "TRAINER.PROMPTSRC.GPA_MEAN": 2, "TRAINER.PROMPTSRC.GPA_STD": 1,
            "TRAIN.CHECKPOINT_FREQ": 1, "TEST.NO_TEST": True}


def test_promptsrc_gpa_equals_gaussian_weighted_epoch_states(make_cfg, root, tmp_path):
    tr = build(make_cfg, root, tmp_path, "PromptSRC", **GPA_OPTS)
    states = []
    original = tr.after_last_batch

    def record():
        states.append(learnable(tr))
        original()

    tr.after_last_batch = record
    train_quietly(tr)
    g = [math.exp(-0.5 * (e - 2) ** 2) for e in (1, 2, 3)]
    w = [x / sum(g) for x in g]
    final = learnable(tr)
    for k in final:
        assert_close(final[k], sum(wi * s[k] for wi, s in zip(w, states)), 1e-6)


def test_promptsrc_resume_keeps_the_gpa_sum(make_cfg, root, tmp_path):
    full = build(make_cfg, root, tmp_path / "full", "PromptSRC", **GPA_OPTS)
    train_quietly(full)

    class Stop(Exception):
        pass

    first = build(make_cfg, root, tmp_path / "cut", "PromptSRC", **GPA_OPTS)
    original = first.after_epoch

    def after_epoch():
        original()
        if first.epoch == 0:
            raise Stop  # killed right after the epoch-1 checkpoint

    first.after_epoch = after_epoch
    with pytest.raises(Stop):
        train_quietly(first)
    resumed = build(make_cfg, root, tmp_path / "cut", "PromptSRC", **GPA_OPTS)
    train_quietly(resumed)
    a, b = learnable(full), learnable(resumed)
    for k in a:
        assert_close(a[k], b[k], 1e-6)


def test_promptsrc_amp_path_trains(make_cfg, root, tmp_path):
    tr = build(make_cfg, root, tmp_path, "PromptSRC", **{"TRAINER.PROMPTSRC.PREC": "amp"})
    assert tr.precision == "amp"
    before = learnable(tr)
    tr.batch_idx, tr.num_batches = 0, 2
    tr.set_model_mode("train")
    summary = tr.forward_backward({"img": batch_of(tr)[0], "label": batch_of(tr)[1]})
    assert torch.isfinite(summary["loss"]) and summary["loss"].item() > 0
    after = learnable(tr)
    assert any(not torch.equal(before[k], after[k]) for k in before)


# --------------------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("trainer", ["IVLP", "MaPLe", "CoOp"])
def test_evaluation_encodes_class_prompts_once_with_per_batch_numbers(make_cfg, root, tmp_path, trainer):
    tr = build(make_cfg, root, tmp_path, trainer)
    perturb(tr.model.prompt_learner)
    calls = []
    encoder = tr.model.text_encoder
    encoder.register_forward_hook(lambda *a: calls.append(1))
    outputs = []
    process = tr.evaluator.process
    tr.evaluator.process = lambda out, gt: (outputs.append(out.clone()), process(out, gt))
    with redirect_stdout(io.StringIO()):
        tr.test()
    assert len(calls) == 1 and len(outputs) == 3  # 12 test images, batch 5
    calls.clear()
    with torch.no_grad():
        per_batch = [tr.model(tr.parse_batch_test(b)[0]) for b in tr.test_loader]  # upstream: encode per batch
    assert len(calls) == 3
    for a, b in zip(outputs, per_batch):
        assert_close(a, b, 1e-6)


# ----------------------------------------------------------------------------------- engine checks
def test_backbone_with_other_pooling_is_a_clear_error(plain):
    import copy

    model = copy.deepcopy(plain)
    model.visual.pool_type = "avg"
    with pytest.raises(ValueError, match="MODEL.BACKBONE.NAME tiny: its vision tower uses pool_type 'avg'"):
        PromptedCLIP(model, TextContext(model, CLASSNAMES, 2), backbone_name="tiny")
    model = copy.deepcopy(plain)
    model.visual.attn_pool = torch.nn.Identity()
    with pytest.raises(ValueError, match="attention pooler"):
        PromptedCLIP(model, TextContext(model, CLASSNAMES, 2), backbone_name="tiny")


def test_grad_checkpointing_is_honoured_with_equal_gradients(make_cfg, root, tmp_path, monkeypatch):
    import trainers.encoders as enc

    grads = []
    real = enc.checkpoint
    for on in (False, True):
        tr = build(make_cfg, root, tmp_path / str(on), "MaPLe")
        tr._clip_model.set_grad_checkpointing(on)
        calls = []
        monkeypatch.setattr(enc, "checkpoint", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
        images, labels = batch_of(tr)
        loss, _, _ = tr.compute_loss(images, labels)
        loss.backward()
        assert len(calls) == (4 if on else 0)  # 2 text + 2 vision blocks
        grads.append({n: p.grad.clone() for n, p in tr.model.named_parameters() if p.requires_grad})
    for k in grads[0]:
        assert_close(grads[0][k], grads[1][k], 1e-6)


def test_non_finite_loss_names_epoch_and_batch(make_cfg, root, tmp_path):
    tr = build(make_cfg, root, tmp_path, "IVLP", **{"TRAIN.PRINT_FREQ": 10, "DATALOADER.TRAIN_X.BATCH_SIZE": 2,
                                                    "TRAIN.CHECKPOINT_FREQ": 1})
    compute = tr.compute_loss

    def diverge(images, labels):
        loss, summary, logits = compute(images, labels)
        if tr.epoch == 1 and tr.batch_idx == 2:
            loss = loss * float("nan")
        return loss, summary, logits

    tr.compute_loss = diverge
    with pytest.raises(FloatingPointError, match=r"Loss is nan at epoch 2/2, batch 3/4: .*OPTIM.LR"):
        train_quietly(tr)
    # only the epoch-1 checkpoint was written, from finite weights
    ckpt = torch.load(tmp_path / "VLPromptLearner" / "model.pth.tar-1", weights_only=False)
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "VLPromptLearner" / "model.pth.tar-2").exists()


# ------------------------------------------------------------------------------------- prompt sets
class TwoSetLearner(trainers.prompts.PromptLearner):
    """S = 2 prompt sets (ALIGN's layout): set 0 "a photo of a {c}." with 2 context slots, set 1 "X X {c}."."""

    def __init__(self, m, classnames):
        super().__init__()
        gen = torch.Generator().manual_seed(5)
        self.classes = trainers.prompts.ClassTokens(m, classnames, ["a photo of a", "X X"], 2)
        self.ctx = torch.nn.Parameter(torch.randn(2, 2, 32, generator=gen) * 0.1)
        self.deep_t = torch.nn.Parameter(torch.randn(2, 2, 32, generator=gen) * 0.1)
        self.vctx = torch.nn.Parameter(torch.randn(2, 3, 64, generator=gen) * 0.1)
        self.deep_v = torch.nn.Parameter(torch.randn(2, 3, 64, generator=gen) * 0.1)

    def forward(self, image_features=None):
        return trainers.prompts.Prompts(class_tokens=self.classes, text_ctx=self.ctx, text_deep=[self.deep_t],
                                        vision_ctx=self.vctx, vision_deep=[self.deep_v], sets=2,
                                        token_outputs=True)


def test_prompt_sets_and_token_outputs_equal_per_set_references(plain):
    import copy

    model = PromptedCLIP(copy.deepcopy(plain), TwoSetLearner(plain, CLASSNAMES), backbone_name="tiny").eval()
    pl = model.prompt_learner
    images = torch.randn(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        prompts = pl()
        text, token_chunks = model.encode_text(prompts, class_chunk=3)
        image, image_tokens = model.encode_image(images, prompts, tokens="all")
        assert text.shape == (4, 2, 48) and image.shape == (3, 2, 48) and image_tokens.shape == (3, 2, 49 + 3, 48)
        for s, prefix in enumerate(["a photo of a", "X X"]):
            texts = [f"{prefix} {n}." for n in names()]
            assert_close(text[:, s], ref_text(plain, texts, 2, pl.ctx[s], [pl.deep_t[s]]))
            assert_close(image[:, s], ref_image(plain, images, pl.vctx[s], [pl.deep_v[s]]))
        # token outputs: image rows b*S+s hold patches then the prompt outputs, after ln_post and proj
        v = plain.visual
        x = v.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([v.class_embedding.expand(3, 1, -1), x], dim=1) + v.positional_embedding
        x = v.ln_pre(torch.cat([x, pl.vctx[1].expand(3, -1, -1)], dim=1))
        x = v.transformer.resblocks[0](x)
        x = torch.cat([x[:, :-3], pl.deep_v[1].expand(3, -1, -1)], dim=1)
        x = v.ln_post(v.transformer.resblocks[1](x)) @ v.proj
        assert_close(image_tokens[:, 1], x[:, 1:])
        # text tokens: chunks of 3 and 1 classes, [c, S, L', E], cut after the chunk's last EOT
        assert [t.shape[0] for t in token_chunks] == [3, 1]
        tokens = clip.tokenize([f"a photo of a {n}." for n in names()])
        assert token_chunks[0].shape[2] == int(tokens[:3].argmax(-1).max()) + 1
        ref_tokens = ref_text(plain, [f"X X {n}." for n in names()], 2, pl.ctx[1], [pl.deep_t[1]], all_tokens=True)
        length = token_chunks[1].shape[2]
        assert_close(token_chunks[1][0, 1], ref_tokens[3, :length])
