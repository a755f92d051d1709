"""Frozen-target benchmark: encoding PromptSRC's text target (60 templates x C classes) before and after the
prompt-interface change, side by side, same model.

    python -m bench targets [--backbone miniworld] [--classes 1000] [--device cpu|cuda] [--json out.json]

* ``before``: what the trainers did until this change -- one text-encoder call per template over the C
  prompts at the full 77 positions, on the CPU (the targets were built before the model moved to the
  training device), and again in every ``--eval-only`` run;
* ``after``: ``PromptedCLIP.frozen_text_features``: every template x class prompt in chunks of 1024
  sequences cut after the chunk's longest EOT, on the training device, once per training run.
The max difference of the two targets is reported (the "before" order of averaging is used for both).
"""
import argparse
import json
import sys
import time

import torch

import clip
from trainers.templates import IMAGENET_TEMPLATES

from ._clip_model import build_prompted_clip, imagenet_classnames
from ._timing import sync


@torch.no_grad()
def targets_before(model, classnames, templates):
    """The previous implementation: per template, full-length sequences, normalise then average."""
    device = model.token_embedding.weight.device
    feats = []
    for template in templates:
        tokens = clip.tokenize([template.format(c.replace("_", " ")) for c in classnames]).to(device)
        f = model.text_encoder(model.token_embedding(tokens), tokens.argmax(dim=-1)).float()
        feats.append(f / f.norm(dim=-1, keepdim=True))
    mean = torch.stack(feats).mean(0)
    return mean / mean.norm(dim=-1, keepdim=True)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench targets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="miniworld")
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", default="")
    args = parser.parse_args(argv)
    names = imagenet_classnames(args.classes)
    device = torch.device(args.device)
    rows = []
    for label, dev, fn in [("before (per template, 77 tokens, CPU)", torch.device("cpu"), targets_before),
                           ("after (chunked, cut after EOT)", device,
                            lambda m, c, t: m.frozen_text_features(c, t, mean="normalized"))]:
        model = build_prompted_clip(args.backbone, names, device=dev)
        sync(dev)
        t0 = time.perf_counter()
        out = fn(model, names, IMAGENET_TEMPLATES)
        sync(dev)
        rows.append({"mode": label, "device": dev.type, "seconds": time.perf_counter() - t0, "targets": out.cpu()})
    diff = float((rows[0]["targets"] - rows[1]["targets"]).abs().max())
    print(f"{args.backbone}: frozen text targets, {len(IMAGENET_TEMPLATES)} templates x {args.classes} classes")
    for r in rows:
        print(f"  {r['mode']:40s} {r['device']:4s} {r['seconds']:8.2f} s  x{rows[0]['seconds'] / r['seconds']:.2f}")
    print(f"  max |difference| {diff:.2e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{k: v for k, v in r.items() if k != "targets"} for r in rows] + [{"max_diff": diff}], f,
                      indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
