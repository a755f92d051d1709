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
number of batches. The model: the ALIGN config (``vit_b16_c2_ep5_batch4_2ctx``) on ``--backbone`` (default
``miniworld``, the repository's pretrained CLIP, so the token similarities are those of trained towers;
depth clamped to its layers), prompts as initialised, random images.

On a shared CPU run with ``OMP_WAIT_POLICY=PASSIVE`` (or ``--threads 1``): with torch's spin-waiting OpenMP
pool and other processes on the cores, each parallel operation can stall for milliseconds (see ``bench/ot.py``).
"""
import argparse
import json
import statistics
import sys
import tempfile
import time

import torch

from bench._mem import PeakMemory
from bench.align_upstream import align_reference
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
    if args.json:
        with open(args.json, "w") as f:
            json.dump(row, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
