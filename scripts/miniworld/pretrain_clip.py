#!/usr/bin/env python
"""Pretrain the ``miniworld`` CLIP contrastively on image-caption pairs of the mini-world (CPU, deterministic).

    python scripts/miniworld/pretrain_clip.py [--steps N] [--out clip/weights/miniworld.pt]

1. Renders a pool of ``--pool`` pretraining images (the six ``PRETRAIN_STYLES``; every (pattern, colour, shape)
   triple except those of the 20 new downstream classes) with fixed seeds.
2. Trains open_clip's ``CLIP`` with ``clip.clip.miniworld_config()`` (fp32, AdamW, warm-up + cosine) with the
   symmetric CLIP loss: each step draws ``--batch`` pool images (seeded by step), flips half of them and
   writes a fresh caption for each ("a blurry photo of a small striped red star.", parts dropped at random).
   The text tower runs on the first ``--text-len`` tokens only: with the causal mask the features at the
   end-of-text token are exactly those of the full 77-token context (the captions are shorter).
3. Prints zero-shot accuracy ("a photo of a {}.") on the downstream style (base and new classes) and on
   the pretraining "photo" style every ``--eval-every`` steps, and the wall time.
4. Saves an OpenAI-layout fp16 state dict (loads with ``clip.load_clip_to_cpu("miniworld")`` when saved to
   ``clip/weights/miniworld.pt``) and ``<out>.sha256``.

Deterministic: seeds are fixed (model init, pool, batches, captions); ``torch.use_deterministic_algorithms``
is on and the thread count is fixed (``--threads``, default 2; another count changes the float reductions):
same torch version + same thread count + same CPU kind -> bit-identical checkpoint file.
"""
import argparse
import hashlib
import io
import math
import os
import os.path as osp
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

import open_clip  # noqa: E402

from clip.clip import miniworld_config  # noqa: E402
from clip.tokenizer import tokenize  # noqa: E402
from miniworld import world as W  # noqa: E402

MEAN = torch.tensor(open_clip.OPENAI_DATASET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(open_clip.OPENAI_DATASET_STD).view(1, 3, 1, 1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--wd", type=float, default=0.1)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--pool", type=int, default=24576, help="number of pretraining images rendered once")
    p.add_argument("--text-len", type=int, default=24, help="text tokens processed (captions are shorter)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-per-class", type=int, default=20)
    p.add_argument("--pool-cache", default="", help="optional .npz: reuse a rendered pool (experiments)")
    p.add_argument("--out", default=osp.join(REPO, "clip", "weights", "miniworld.pt"))
    return p.parse_args(argv)


def to_input(images_uint8: np.ndarray) -> torch.Tensor:
    """``[n, H, W, 3]`` uint8 -> normalised ``[n, 3, H, W]`` (the downstream ToTensor + Normalize)."""
    x = torch.from_numpy(images_uint8).permute(0, 3, 1, 2).float().div_(255)
    return (x - MEAN) / STD


def render_pool(n, seed, chunk=1024, log=print):
    """``n`` pretraining images and their scene attributes (for captions), rendered in seeded chunks."""
    images = np.empty((n, W.IMAGE_SIZE, W.IMAGE_SIZE, 3), np.uint8)
    attrs = np.empty((n, 5), np.int64)  # style, size, pattern, colour, shape
    exclude = W.new_triples()
    t0 = time.time()
    for c, start in enumerate(range(0, n, chunk)):
        m = min(chunk, n - start)
        rng = np.random.default_rng([seed, 0, c])
        sc = W.sample_scenes(rng, W.pretrain_triples(rng, m, exclude), W.PRETRAIN_STYLES)
        images[start:start + m] = W.render(sc, rng)
        attrs[start:start + m] = np.stack([sc.style, sc.size, sc.pattern, sc.colour, sc.shape], 1)
        if c % 8 == 0 or start + m == n:
            log(f"  pool {start + m:>6}/{n} images rendered ({time.time() - t0:.0f} s)")
    return images, attrs


class _Scenes:
    """The attributes ``caption`` reads, from the pool's attribute rows."""

    def __init__(self, attrs):
        self.style, self.size, self.pattern, self.colour, self.shape = attrs.T


class TokenCache:
    def __init__(self, length):
        self.length = length
        self.cache = {}

    def __call__(self, texts):
        rows = []
        for t in texts:
            row = self.cache.get(t)
            if row is None:
                row = self.cache[t] = tokenize(t)[0, :self.length]
                assert row[-1] == 0, f"caption longer than --text-len: {t!r}"
            rows.append(row)
        return torch.stack(rows)


def encode_text_prefix(model, tokens):
    """``model.encode_text`` on the first ``L`` positions (exact for texts shorter than ``L``: causal mask)."""
    L = tokens.shape[1]
    x = model.token_embedding(tokens) + model.positional_embedding[:L]
    x = model.transformer(x, attn_mask=model.attn_mask[:L, :L])
    x = model.ln_final(x)
    x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
    return x @ model.text_projection


@torch.no_grad()
def zero_shot(model, eval_sets, template="a photo of a {}."):
    """Top-1 zero-shot accuracy (%) per eval set ``name -> (images, labels, classnames)``."""
    model.eval()
    out = {}
    for name, (x, y, names) in eval_sets.items():
        tokens = tokenize([template.format(c) for c in names])
        t = F.normalize(model.encode_text(tokens), dim=-1)
        f = torch.cat([F.normalize(model.encode_image(x[i:i + 500]), dim=-1) for i in range(0, len(x), 500)])
        out[name] = (f @ t.T).argmax(1).eq(y).float().mean().item() * 100
    model.train()
    return out


def eval_sets(per_class, seed):
    names = W.class_names()
    half = len(names) // 2
    sets = {}
    for style in [W.DOWNSTREAM_STYLE, "photo"]:
        for part, labels in (("base", range(half)), ("new", range(half, len(names)))):
            y = np.repeat(np.arange(len(labels)), per_class)
            imgs = W.class_images([seed, 99, W.STYLES.index(style), int(part == "new")],
                                  [labels[i] for i in y], style)
            sets[f"{style}/{part}"] = (to_input(imgs), torch.from_numpy(y), [names[i] for i in labels])
    return sets


def build_optimizer(model, lr, wd):
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.ndim >= 2 and "embedding" not in n else no_decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98), eps=1e-6)


def lr_at(step, args):
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * progress))


def save_checkpoint(model, path):
    sd = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()
          if k != "attn_mask"}
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    buf = io.BytesIO()  # not torch.save(path): the archive's inner folder is named after the file
    torch.save(sd, buf)
    data = buf.getvalue()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    digest = hashlib.sha256(data).hexdigest()
    with open(path + ".sha256", "w") as f:
        f.write(f"{digest}  {osp.basename(path)}\n")
    return digest


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    log = lambda s: print(s, flush=True)  # noqa: E731
    log(f"miniworld CLIP pretraining: {vars(args)}")

    if args.pool_cache and osp.isfile(args.pool_cache):
        z = np.load(args.pool_cache)
        images, attrs = z["images"], z["attrs"]
        log(f"pool loaded from {args.pool_cache}")
    else:
        log(f"rendering {args.pool} pretraining images ({len(W.PRETRAIN_STYLES)} styles) ...")
        images, attrs = render_pool(args.pool, args.seed, log=log)
        if args.pool_cache:
            np.savez(args.pool_cache, images=images, attrs=attrs)
    t_pool = time.time() - t_start
    evals = eval_sets(args.eval_per_class, args.seed)

    model = open_clip.model.CLIP(**miniworld_config())
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params:,} parameters ({n_params * 2 / 1e6:.1f} MB in fp16)")
    opt = build_optimizer(model, args.lr, args.wd)
    tokens_of = TokenCache(args.text_len)
    t_train = time.time()
    for step in range(args.steps):
        rng = np.random.default_rng([args.seed, 1, step])
        idx = rng.integers(0, len(images), args.batch)
        x = to_input(images[idx])
        flip = torch.from_numpy(rng.random(args.batch) < 0.5)
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        sub = _Scenes(attrs[idx])
        texts = [W.caption(rng, sub, i) for i in range(args.batch)]
        tokens = tokens_of(texts)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        img = F.normalize(model.encode_image(x), dim=-1)
        txt = F.normalize(encode_text_prefix(model, tokens), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.T
        target = torch.arange(args.batch)
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 50 == 0 or step == args.steps - 1:
            acc = logits.argmax(1).eq(target).float().mean().item() * 100
            el = time.time() - t_train
            log(f"step {step + 1:>5}/{args.steps}  loss {loss.item():.3f}  batch acc {acc:5.1f}%  "
                f"scale {model.logit_scale.exp().item():5.1f}  lr {lr_at(step, args):.2e}  "
                f"{el / (step + 1):.2f} s/step  elapsed {el / 60:.1f} min")
        if (step + 1) % args.eval_every == 0 or step == args.steps - 1:
            res = zero_shot(model, evals)
            log("  zero-shot: " + "  ".join(f"{k} {v:.1f}%" for k, v in res.items()))
    digest = save_checkpoint(model, args.out)
    total = time.time() - t_start
    log(f"saved {args.out} ({osp.getsize(args.out) / 1e6:.2f} MB) sha256 {digest}")
    log(f"wall time: {total / 60:.1f} min (pool {t_pool / 60:.1f} min, "
        f"training {(time.time() - t_train) / 60:.1f} min) on {args.threads} thread(s)")


if __name__ == "__main__":
    main()
