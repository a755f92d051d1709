"""ALIGN evaluation: the released code's computation against ours, in one process on the same inputs.

    python -m bench align-eval [--backbone miniworld] [--classes 100] [--batch 100] [--batches 2]
        [--repeat 3] [--device cpu|cuda] [--prec fp32|fp16] [--threads T] [--opts KEY VALUE ...] [--json out.json]

Upstream (``bench/align_upstream.py``, as wds2014/ALIGN ``trainers/mmp.py`` evaluates): every test batch
re-encodes the C x N class prompts (77 positions), encodes the B x M prompted images, then runs one Sinkhorn
call per (image, class) in a Python loop with a host-side stop test every iteration, and one prompt-level
call. Ours (the ``ALIGN`` trainer's evaluation): the class prompts, features and token sets encoded once per
evaluation, the token level batched over (image, class, m, n) per class chunk with the same per-call stop
rule. Reported per test batch: median time over ``--repeat`` runs (the two sides alternate, so a change of the
machine's load hits both), peak memory over a run (CUDA: allocator peak; CPU: sampled resident-set growth)
and the max |logit difference|. Ours' time is its whole evaluation (class encoding included) divided by the
number of batches. Then the token level alone on the first batch's real token costs: ours (one batched
``sinkhorn`` call, per-(image, class) stop rule, stopped calls dropped from the iterated batch) against the
loop of one upstream call per (image, class), with the max |plan difference| and the iteration counts. The model: the ALIGN config (``vit_b16_c2_ep5_batch4_2ctx``) on ``--backbone`` (default
``miniworld``, the repository's pretrained CLIP, so the token similarities are those of trained towers;
depth clamped to its layers), prompts as initialised, random images.

On a shared CPU run with ``OMP_WAIT_POLICY=PASSIVE`` (or ``--threads 1``): with torch's spin-waiting OpenMP
pool and other processes on the cores, each parallel operation can stall for milliseconds (see ``bench/ot.py``).
"""
import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time

import torch

from bench._mem import PeakMemory
from bench.align_upstream import align_reference
from bench.ot import upstream_sinkhorn
from bench.step import _cuda, build_bench_trainer


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_ours(trainer, batches):
    model = trainer.model
    with torch.no_grad():
        classes = model.class_encodings(model.prompt_learner())
        return [model(images, classes).float() for images in batches]


def run_upstream(trainer, batches):
    model = trainer.model
    names = trainer.dm.dataset.classnames
    return [align_reference(trainer._clip_model, model.prompt_learner, names, images).float() for images in batches]


def token_level_problem(trainer, images):
    """The token-level OT of one test batch on the model's real tokens: padded costs ``[B, C, M*N, P, L]``,
    column masses ``[C, M*N, L]`` and per-class lengths."""
    model = trainer.model
    with torch.no_grad():
        prompts = model.prompt_learner()
        classes = model.class_encodings(prompts)
        _, x = model.image_encodings(images, prompts)
        y, lengths = classes.tokens, classes.lengths
        B, M, P, _ = x.shape
        C, N, L, _ = y.shape
        sim = torch.einsum("bmpe,cnle->bcmnpl", x, y).reshape(B, C, M * N, P, L).float()
        valid = (torch.arange(L, device=y.device) < lengths[..., None]).float()
        mass = (valid / lengths[..., None])[:, None].expand(C, M, N, L).reshape(C, M * N, L)
    return 1 - sim, mass, lengths[:, 0].tolist()


def token_level_only(trainer, images, repeat):
    """Ours (``sinkhorn(stop_rule="upstream", call_dims=2)``, one batched call) against upstream's loop of one
    ``Sinkhorn`` per (image, class), on the same token costs: median seconds, max |plan difference|, iterations."""
    from trainers.optimal_transport import sinkhorn

    cost, mass, lengths = token_level_problem(trainer, images)
    B, C = cost.shape[:2]
    device = trainer.device

    def ours():
        return sinkhorn(cost, b=mass.expand(B, -1, -1, -1), eps=0.1, stop_rule="upstream", call_dims=2, log=True)

    def loop():
        plans = []
        for b, c in itertools.product(range(B), range(C)):
            k = cost[b, c, :, :, :lengths[c]]
            u = torch.full(k.shape[:-1], 1.0 / k.shape[-2], device=device)
            v = torch.full((k.shape[0], k.shape[-1]), 1.0 / k.shape[-1], device=device)
            plans.append(upstream_sinkhorn(torch.exp(-k / 0.1), u, v))
        return plans

    t_ours, t_loop = [], []
    for _ in range(repeat):
        for fn, acc in ((ours, t_ours), (loop, t_loop)):
            _sync(device)
            t0 = time.perf_counter()
            out = fn()
            _sync(device)
            acc.append(time.perf_counter() - t0)
            if fn is ours:
                plan, log = out
            else:
                ref = out
    diff = max(float((plan[b, c, :, :, :lengths[c]] - ref[i]).abs().max())
               for i, (b, c) in enumerate(itertools.product(range(B), range(C))))
    iters = log["n_iter"][:, :, 0].flatten().float()
    return {"token_ours_s": statistics.median(t_ours), "token_loop_s": statistics.median(t_loop),
            "token_speedup": statistics.median(t_loop) / statistics.median(t_ours), "token_max_plan_diff": diff,
            "token_iters_median": float(iters.median()), "token_iters_max": int(iters.max()),
            "token_problems": f"{B}x{C} calls of {cost.shape[2]} x {cost.shape[3]} x (L_c <= {cost.shape[4]})"}


def timed(fn, trainer, batches):
    device = trainer.device
    with PeakMemory(device) as mem:
        _sync(device)
        t0 = time.perf_counter()
        out = fn(trainer, batches)
        _sync(device)
        seconds = time.perf_counter() - t0
    return out, seconds / len(batches), mem.peak_mb


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench align-eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="miniworld")
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100, help="test batch size (the configs' 100)")
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--prec", default="fp32", help="TRAINER.ALIGN.PREC (fp16 runs on CUDA only)")
    parser.add_argument("--opts", nargs="*", default=[], help="more KEY VALUE config overrides")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's default)")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as root:
        trainer = build_bench_trainer("ALIGN", args.backbone, args.classes, args.device, args.prec, root,
                                      ["TRAINER.ALIGN.EPOCH_OVERRIDE", "False", *args.opts])
    trainer.set_model_mode("eval")
    trainer.prepare(training=False)
    size = trainer.model.image_encoder.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    gen = torch.Generator().manual_seed(0)
    batches = [torch.randn(args.batch, 3, size, size, generator=gen).to(trainer.device).to(trainer.model.dtype)
               for _ in range(args.batches)]
    run_ours(trainer, batches[:1])  # warm-up (allocator, thread pool)
    times = {"ours": [], "upstream": []}
    mems = {"ours": 0.0, "upstream": 0.0}
    outs = {}
    for r in range(args.repeat):
        order = [("ours", run_ours), ("upstream", run_upstream)]
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            out, seconds, peak = timed(fn, trainer, batches)
            times[name].append(seconds)
            mems[name] = max(mems[name], peak)
            outs.setdefault(name, out)
            print(f"  run {r + 1}/{args.repeat} {name:8s} {seconds:8.3f} s per batch", flush=True)
    diff = max(float((a - b).abs().max()) for a, b in zip(outs["ours"], outs["upstream"]))
    t_ours, t_up = statistics.median(times["ours"]), statistics.median(times["upstream"])
    row = {"backbone": args.backbone, "device": trainer.device.type, "precision": trainer.precision,
           "classes": args.classes, "batch": args.batch, "batches": args.batches, "repeat": args.repeat,
           "threads": torch.get_num_threads(), "ours_s_per_batch": t_ours, "upstream_s_per_batch": t_up,
           "speedup": t_up / t_ours, "ours_peak_mb": mems["ours"], "upstream_peak_mb": mems["upstream"],
           "max_logit_diff": diff}
    print(f"ALIGN evaluation, {args.backbone} on {row['device']}/{row['precision']}, {args.classes} classes, "
          f"test batch {args.batch}, {torch.get_num_threads()} threads (median of {args.repeat}):")
    print(f"  upstream loop   {t_up:9.3f} s/batch   peak {mems['upstream']:8.1f} MB")
    print(f"  ours            {t_ours:9.3f} s/batch   peak {mems['ours']:8.1f} MB")
    print(f"  speed-up x{row['speedup']:.1f}   max |logit difference| {diff:.2e}")
    row.update(token_level_only(trainer, batches[0], args.repeat))
    print(f"token level only ({row['token_problems']}; iterations per call: median {row['token_iters_median']:.0f}, "
          f"max {row['token_iters_max']}):")
    print(f"  upstream loop   {row['token_loop_s']:9.3f} s   ours {row['token_ours_s']:9.3f} s   "
          f"speed-up x{row['token_speedup']:.1f}   max |plan difference| {row['token_max_plan_diff']:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
