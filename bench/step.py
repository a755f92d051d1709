"""Training-step benchmark: median step time and peak memory of prompt-learning trainers, side by side.

    python -m bench step --trainer PromptOT IVLP --backbone tiny ViT-B/16 [--batch 4] [--classes 50]
        [--steps 10] [--device cpu|cuda] [--prec fp32|fp16|bf16|amp] [--opts KEY VALUE ...] [--json out.json]

A trainer may carry config overrides: ``ALIGN[TRAINER.ALIGN.GRAD_CHECKPOINT=True]``; ``--opts`` are overrides
for every run (e.g. ``TRAINER.SOTGLP.CHECKPOINTING_SEGMENTS 12``). The synthetic dataset is used whole
(``DATASET.NUM_SHOTS -1``).

Each (trainer, backbone) runs in its own process (so peak memory is its own): the model is built from a
synthetic dataset of ``--classes`` classes with ``MODEL.BACKBONE.PRETRAINED False`` (random weights,
real architecture), then ``forward_backward`` runs on random images. Reported: median seconds per step,
peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak RSS), the training memory (that peak
minus the built model's memory: activations, gradients, optimizer buffers; CPU: peak RSS minus the RSS before
the first step) and the ratio of every trainer to the first one given.
"""
import argparse
import io
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TRAINER_CONFIGS = {  # the configs of the published base-to-new runs
    "CoOp": "configs/trainers/CoOp/vit_b16_ep50.yaml",
    "IVLP": "configs/trainers/IVLP/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
    "PromptSRC": "configs/trainers/PromptSRC/vit_b16_c2_ep20_batch4_4+4ctx.yaml",
    "PromptOT": "configs/trainers/PromptOT/vit_b16_c2_ep20_batch4_4+4ctx-Copy3.yaml",
    "MaPLe": "configs/trainers/MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml",
    "CoCoOp": "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml",
    "ALIGN": "configs/trainers/ALIGN/vit_b16_c2_ep5_batch4_2ctx.yaml",
    "SOTGLP": "configs/trainers/SOTGLP/dtd.yaml",  # N = 4 local prompts, as ImageNet's
}


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def build_bench_trainer(trainer_name, backbone, n_classes, device, prec, root, opts=()):
    """A trainer on a synthetic dataset of ``n_classes`` classes written under ``root`` (random weights unless the
    backbone ships its own, e.g. ``miniworld``), the published config of ``trainer_name``, ``opts`` appended."""
    sys.path.insert(0, REPO)
    import train  # registers trainers and datasets
    from datasets.toy import write_coop_tree
    from dassl.engine import build_trainer

    names = [f"class{i}" for i in range(n_classes)]
    write_coop_tree(root, classnames=names, counts={"train": 1, "val": 1, "test": 1})
    opts = ["MODEL.BACKBONE.NAME", backbone, "MODEL.BACKBONE.PRETRAINED", str(backbone == "miniworld"),
            "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "1", "USE_CUDA", str(device == "cuda"),
            "VERBOSE", "False", "DATASET.NUM_SHOTS", "-1", *opts]
    if prec:
        opts += [f"TRAINER.{trainer_name.upper()}.PREC", prec]
    cfg_file = TRAINER_CONFIGS.get(trainer_name, "")
    args = train.build_parser().parse_args(
        ["--root", root, "--trainer", trainer_name, "--output-dir", osp.join(root, "out"),
         "--dataset-config-file", osp.join(REPO, "configs/datasets/oxford_pets.yaml")]
        + (["--config-file", osp.join(REPO, cfg_file)] if cfg_file and osp.exists(osp.join(REPO, cfg_file)) else [])
        + opts)
    cfg = train.setup_cfg(args)
    with redirect_stdout(io.StringIO()):
        return build_trainer(cfg)


def parse_spec(spec):
    """``NAME[KEY=VALUE,...]`` -> ``(NAME, [KEY, VALUE, ...])``."""
    name, _, rest = spec.partition("[")
    opts = []
    for item in filter(None, rest.rstrip("]").split(",")):
        key, _, value = item.partition("=")
        opts += [key, value]
    return name, opts


def measure(spec, backbone, batch, n_classes, steps, device, prec, root, extra=()):
    """Run in a fresh process: build the trainer, time ``steps`` training steps. Returns a dict."""
    import torch

    from bench._mem import PeakMemory, rss_bytes

    trainer_name, opts = parse_spec(spec)
    trainer = build_bench_trainer(trainer_name, backbone, n_classes, device, prec, root, [*extra, *opts])
    trainer.set_model_mode("train")
    size = trainer.model.image_encoder.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    dev = trainer.device
    gen = torch.Generator().manual_seed(0)
    batch_dict = {"img": torch.randn(batch, 3, size, size, generator=gen).to(dev),
                  "label": torch.randint(0, n_classes, (batch,), generator=gen).to(dev)}
    trainer.num_batches, trainer.batch_idx = 10 ** 9, 0  # never the last batch: no LR step / GPA
    rss_model = rss_bytes() / 2 ** 20  # the built model, before any step
    for _ in range(2):  # warm-up
        trainer.forward_backward(batch_dict)
    times = []
    with PeakMemory(dev) as step_mem:
        for _ in range(steps):
            t0 = time.perf_counter()
            trainer.forward_backward(batch_dict)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    result = {"trainer": spec, "backbone": backbone, "step_peak_mb": step_mem.peak_mb, "batch": batch, "classes": n_classes,
              "device": dev.type, "precision": trainer.precision, "median_step_s": statistics.median(times),
              "min_step_s": min(times)}
    if dev.type == "cuda":  # allocator statistics of the timed steps (after the warm-up)
        result["model_mem_mb"] = step_mem.base / 2 ** 20
        result["train_mem_mb"] = step_mem.peak_mb
        result["peak_mem_mb"] = result["model_mem_mb"] + step_mem.peak_mb
    else:
        result["peak_mem_mb"] = _peak_rss_mb()
        result["train_mem_mb"] = result["peak_mem_mb"] - rss_model  # peak RSS of warm-up and steps over the model
    return result


def run_child(trainer_name, backbone, args):
    cmd = [sys.executable, "-m", "bench.step", "--child", trainer_name, backbone, "--batch", str(args.batch),
           "--classes", str(args.classes), "--steps", str(args.steps), "--device", args.device]
    if args.prec:
        cmd += ["--prec", args.prec]
    if args.opts:
        cmd += ["--opts", *args.opts]
    env = dict(os.environ, DASSL_ENV_INFO="short")
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{trainer_name}/{backbone} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainer", nargs="+", default=["IVLP", "PromptOT"])
    parser.add_argument("--backbone", nargs="+", default=["tiny", "ViT-B/16"])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--classes", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu")
    parser.add_argument("--prec", default="", help="override PREC (default: the config's; fp16 falls back "
                                                    "to fp32 on CPU)")
    parser.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                        help="config overrides for every run")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every (trainer, backbone) this many times in alternation and keep the fastest "
                             "median (a busy machine slows single runs unevenly)")
    parser.add_argument("--json", default="")
    parser.add_argument("--child", nargs=2, metavar=("TRAINER", "BACKBONE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        with tempfile.TemporaryDirectory() as root:
            res = measure(args.child[0], args.child[1], args.batch, args.classes, args.steps, args.device,
                          args.prec, root, args.opts)
        print(json.dumps(res))
        return 0

    rows = []
    for backbone in args.backbone:
        ref = None
        runs = {t: [] for t in args.trainer}
        for _ in range(args.rounds):
            for trainer_name in args.trainer:
                runs[trainer_name].append(run_child(trainer_name, backbone, args))
        for trainer_name in args.trainer:
            res = min(runs[trainer_name], key=lambda r: r["median_step_s"])
            res["rounds"] = args.rounds
            ref = ref or res
            res["time_ratio"] = res["median_step_s"] / ref["median_step_s"]
            res["mem_ratio"] = res["peak_mem_mb"] / ref["peak_mem_mb"]
            res["train_mem_ratio"] = res["train_mem_mb"] / max(ref["train_mem_mb"], 1e-9)
            rows.append(res)
            print(f"{backbone:10s} {trainer_name:10s} {res['device']}/{res['precision']:5s} "
                  f"step {res['median_step_s'] * 1e3:8.1f} ms  peak {res['peak_mem_mb']:8.0f} MB  "
                  f"training {res['train_mem_mb']:8.1f} MB  x{res['time_ratio']:.2f} time, "
                  f"x{res['mem_ratio']:.2f} peak, x{res['train_mem_ratio']:.2f} training memory vs {args.trainer[0]}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


def _cuda():
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
