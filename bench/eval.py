"""Evaluation benchmark: time per test image when the class prompts are re-encoded for every test batch (as
the upstream CoOp-family code does) vs once per evaluation (this framework), side by side, same inputs.

    python -m bench eval [--backbone miniworld] [--classes 1000] [--batch 100] [--batches 3]
        [--learner IVLP|MaPLe] [--device cpu|cuda] [--repeat 3] [--json out.json]

Rows (each an evaluation of ``--batches`` test batches of ``--batch`` random images over ``--classes``
ImageNet class names, prompts of IVLP / MaPLe at depth 9):
* ``per batch, 77 tokens``: upstream -- every batch encodes all class prompts at the full 77 positions;
* ``per batch, cut after EOT``: the same with this framework's text encoder (sequences cut after the
  chunk's longest EOT: the text tower is causal, so no output changes);
* ``once per evaluation``: the class features encoded once, each batch only encodes its images.
Timed in alternation (minimum over ``--repeat`` rounds); the max |logit difference| to the first row is
reported. The model has the backbone's real architecture (``miniworld`` is shipped with its weights).
"""
import argparse
import json
import sys

import torch

from ._clip_model import build_prompted_clip, image_size, imagenet_classnames
from ._timing import timed_together


def _full_length(model):
    """A context manager making the class prompts 77 positions long (upstream's sequence length)."""
    import contextlib

    tokens = model.prompt_learner().class_tokens

    @contextlib.contextmanager
    def ctx():
        saved = tokens.class_lengths
        tokens.class_lengths = [tokens.suffix.shape[2] + 1 + tokens.n_ctx] * len(saved)
        try:
            yield
        finally:
            tokens.class_lengths = saved

    return ctx()


def run(args):
    torch.manual_seed(0)
    device = torch.device(args.device)
    names = imagenet_classnames(args.classes)
    model = build_prompted_clip(args.backbone, names, args.learner, device)
    size = image_size(model)
    batches = [torch.randn(args.batch, 3, size, size, device=device) for _ in range(args.batches)]

    @torch.no_grad()
    def per_batch_full():
        with _full_length(model):
            return torch.cat([model(x) for x in batches])

    @torch.no_grad()
    def per_batch():
        return torch.cat([model(x) for x in batches])

    @torch.no_grad()
    def once():
        text = model.encode_text(model.prompt_learner())
        return torch.cat([model(x, text_features=text) for x in batches])

    rows = [("per batch, 77 tokens (upstream)", per_batch_full), ("per batch, cut after EOT", per_batch),
            ("once per evaluation (ours)", once)]
    results = timed_together([fn for _, fn in rows], device, args.repeat)
    ref = results[0][0]
    n_images = args.batch * args.batches
    out = []
    print(f"{args.backbone} {args.learner}, {args.classes} classes, {args.batches} x {args.batch} images, "
          f"{device.type}:")
    for (name, _), (logits, secs) in zip(rows, results):
        row = {"mode": name, "seconds": secs, "ms_per_image": 1e3 * secs / n_images,
               "speedup_vs_upstream": results[0][1] / secs,
               "max_logit_diff": float((logits - ref).abs().max())}
        out.append(row)
        print(f"  {name:34s} {row['ms_per_image']:8.3f} ms/image  x{row['speedup_vs_upstream']:5.2f}  "
              f"max|dlogit| {row['max_logit_diff']:.2e}", flush=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="miniworld")
    parser.add_argument("--learner", default="IVLP", choices=["IVLP", "MaPLe"])
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    rows = run(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
