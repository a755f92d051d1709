"""Load CLIP models from local weight files, built with open_clip (never downloads).

Names accepted by :func:`load` / :func:`load_clip_to_cpu`:

* OpenAI names (``ViT-B/16``, ``ViT-B/32``, ``ViT-L/14``, ``RN50``, ``RN101``, ...), resolved to OpenAI's
  file names (``ViT-B-16.pt``...) in ``$CLIP_WEIGHTS_DIR`` (if set) then ``~/.cache/clip/``;
* a path to a checkpoint file: an OpenAI TorchScript archive or a plain OpenAI-layout state dict;
* an open_clip ``model:pretrained-tag`` pair (e.g. ``ViT-B-16:laion2b_s34b_b88k``) whose weights are
  already in the Hugging Face / open_clip cache;
* ``tiny``: a small randomly initialised CLIP (fixed seed) for tests;
* ``miniworld``: the small CLIP pretrained on the mini-world (``clip/weights/miniworld.pt``, shipped).

``pretrained=False`` builds the same architecture with random weights (for benchmarks).
"""
import os
import os.path as osp
import warnings
import zipfile
from typing import Callable, Tuple

import open_clip
import torch
from open_clip.model import CLIPTextCfg, CLIPVisionCfg, build_model_from_openai_state_dict, convert_weights_to_lp
from open_clip.transform import image_transform

from .model import CLIP, as_clip

__all__ = [
    "available_models", "load", "load_clip_to_cpu", "build_model", "resolve_weights", "WeightsNotFoundError",
    "OPENAI_FILES", "WEIGHTS_DIR_ENV",
]

WEIGHTS_DIR_ENV = "CLIP_WEIGHTS_DIR"

# OpenAI model name -> (file name OpenAI's clip.load saves, open_clip architecture name)
OPENAI_FILES = {
    "RN50": ("RN50.pt", "RN50"),
    "RN101": ("RN101.pt", "RN101"),
    "RN50x4": ("RN50x4.pt", "RN50x4"),
    "RN50x16": ("RN50x16.pt", "RN50x16"),
    "RN50x64": ("RN50x64.pt", "RN50x64"),
    "ViT-B/32": ("ViT-B-32.pt", "ViT-B-32"),
    "ViT-B/16": ("ViT-B-16.pt", "ViT-B-16"),
    "ViT-L/14": ("ViT-L-14.pt", "ViT-L-14"),
    "ViT-L/14@336px": ("ViT-L-14-336px.pt", "ViT-L-14-336"),
}

TINY_NAME = "tiny"
TINY_SEED = 0
# Backbones shipped with the repository: name -> file under clip/weights/ (an OpenAI-layout fp16 state dict)
MINIWORLD_NAME = "miniworld"
PACKAGED_WEIGHTS_DIR = osp.join(osp.dirname(osp.abspath(__file__)), "weights")
PACKAGED = {MINIWORLD_NAME: "miniworld.pt"}


class WeightsNotFoundError(FileNotFoundError):
    """Raised when no local weight file exists for a model name."""


def available_models():
    """The names :func:`load` understands without a file path."""
    return list(OPENAI_FILES) + [TINY_NAME, *PACKAGED, "<open_clip model>:<pretrained tag>", "<path to a checkpoint>"]


def weights_dirs():
    """Directories searched for OpenAI weight files, in order."""
    dirs = []
    if os.environ.get(WEIGHTS_DIR_ENV):
        dirs.append(osp.expanduser(os.environ[WEIGHTS_DIR_ENV]))
    dirs.append(osp.expanduser("~/.cache/clip"))
    return dirs


def resolve_weights(name: str) -> str:
    """The local file holding ``name``'s weights; raise :class:`WeightsNotFoundError` saying what to do."""
    if osp.isfile(osp.expanduser(name)):
        return osp.abspath(osp.expanduser(name))
    if name in PACKAGED:
        path = osp.join(PACKAGED_WEIGHTS_DIR, PACKAGED[name])
        if not osp.isfile(path):
            raise WeightsNotFoundError(f"The '{name}' checkpoint {path} is missing: it is part of the repository "
                                       "(restore it with git, or re-create it: see README, 'Mini-world demo').")
        return path
    if name in OPENAI_FILES:
        fname, arch = OPENAI_FILES[name]
        candidates = [osp.join(d, fname) for d in weights_dirs()]
        for path in candidates:
            if osp.isfile(path):
                return path
        url = open_clip.pretrained.get_pretrained_url(arch, "openai") or "(see OpenAI's CLIP repository)"
        raise WeightsNotFoundError(
            f"CLIP weights for '{name}' not found. Looked for: {', '.join(candidates)}.\n"
            f"Put OpenAI's file '{fname}' in one of those folders (or set ${WEIGHTS_DIR_ENV} to the folder "
            f"holding it). Obtain it on a machine with internet access, e.g.\n"
            f"  wget -P ~/.cache/clip {url}\n"
            "This framework never downloads weights itself. See INSTALL.md, section 'CLIP weights'."
        )
    if ":" in name:
        return _resolve_open_clip_cached(name)
    if osp.sep in name or name.endswith((".pt", ".pth", ".bin", ".safetensors", ".tar")):
        raise WeightsNotFoundError(f"CLIP checkpoint file not found: '{name}' (no such file).")
    raise WeightsNotFoundError(
        f"Unknown CLIP backbone '{name}'. Use one of {list(OPENAI_FILES)}, '{TINY_NAME}', "
        f"{', '.join(repr(n) for n in PACKAGED)}, a path to a "
        "checkpoint file, or an open_clip 'model:pretrained-tag' pair (see open_clip.list_pretrained())."
    )


def _resolve_open_clip_cached(name: str) -> str:
    arch, tag = name.split(":", 1)
    if not open_clip.pretrained.is_pretrained_cfg(arch, tag):
        raise WeightsNotFoundError(
            f"'{name}' is not a known open_clip model:tag pair. Known pairs: open_clip.list_pretrained()."
        )
    cfg = open_clip.pretrained.get_pretrained_cfg(arch, tag)
    looked = []
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo_id = cfg["hf_hub"].rstrip("/")
        for fname in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            path = try_to_load_from_cache(repo_id, fname)
            looked.append(f"Hugging Face cache {repo_id}/{fname}")
            if isinstance(path, str) and osp.isfile(path):
                return path
    if cfg.get("url"):
        fname = osp.basename(cfg["url"])
        for d in [*weights_dirs(), osp.expanduser("~/.cache/open_clip")]:
            path = osp.join(d, fname)
            looked.append(path)
            if osp.isfile(path):
                return path
    raise WeightsNotFoundError(
        f"open_clip weights for '{name}' are not cached locally. Looked for: {'; '.join(looked)}.\n"
        f"Cache them on a machine with internet access with "
        f"`python -c \"import open_clip; open_clip.create_model('{arch}', pretrained='{tag}')\"` and copy "
        "the cache (~/.cache/huggingface) here. This framework never downloads weights itself."
    )


def _is_torchscript(path: str) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``constants.pkl``), not a ``torch.save`` file."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _read_openai_checkpoint(path: str) -> dict:
    """A state dict from an OpenAI TorchScript archive or a plain (OpenAI-layout) state dict file."""
    if _is_torchscript(path):
        try:
            with warnings.catch_warnings():
                # OpenAI ships CLIP as TorchScript; recent torch deprecates torch.jit.load, the only reader of it.
                warnings.filterwarnings("ignore", message=r"`torch\.jit\.load` is deprecated", category=FutureWarning)
                archive = torch.jit.load(path, map_location="cpu")
            return {k: v for k, v in archive.state_dict().items()}
        except RuntimeError:
            pass
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise ValueError(f"'{path}' holds a {type(obj).__name__}, not a CLIP state dict or TorchScript archive")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def build_model(state_dict: dict) -> CLIP:
    """OpenAI's ``clip.build_model``: infer the architecture from an OpenAI-layout state dict.

    The weights of linear/conv/attention layers are fp16 (as OpenAI's), LayerNorms compute in fp32.
    """
    # Derived buffers some exporters (e.g. tracing open_clip) write; the model rebuilds them.
    sd = {k: v for k, v in state_dict.items() if k != "attn_mask"}
    if "visual.proj" not in sd and "visual.attnpool.positional_embedding" not in sd:
        raise ValueError("Not an OpenAI-layout CLIP state dict: neither 'visual.proj' (ViT) nor "
                         "'visual.attnpool.positional_embedding' (ResNet) is present")
    return as_clip(build_model_from_openai_state_dict(sd, quick_gelu=True, cast_dtype=torch.float16))


def tiny_config() -> dict:
    """Architecture of the ``tiny`` test backbone: vision width 64, text width 32, embedding 48."""
    return dict(
        embed_dim=48,
        vision_cfg=CLIPVisionCfg(layers=2, width=64, head_width=32, patch_size=32, image_size=224),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
        quick_gelu=True,
    )


def miniworld_config() -> dict:
    """Architecture of the ``miniworld`` backbone (pretrained on the mini-world, ``clip/weights/miniworld.pt``).

    ViT: 48x48 images, patch 8, width 128 (2 heads of 64), 4 layers; text: CLIP's 49408-token BPE vocabulary,
    context 77, width 64 (1 head), 3 layers; embedding 96. Head widths are 64, so an OpenAI-layout state dict
    of it rebuilds exactly this model (``build_model`` infers heads = width // 64).
    """
    return dict(
        embed_dim=96,
        vision_cfg=CLIPVisionCfg(layers=4, width=128, head_width=64, patch_size=8, image_size=48),
        text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1, layers=3),
        quick_gelu=True,
    )


def _build_random(name: str, seed: int = TINY_SEED) -> CLIP:
    """The architecture of ``name`` with random weights (fixed seed; global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if name == TINY_NAME:
            model = open_clip.model.CLIP(**tiny_config(), cast_dtype=torch.float16)
        elif name == MINIWORLD_NAME:
            model = open_clip.model.CLIP(**miniworld_config(), cast_dtype=torch.float16)
        else:
            arch = OPENAI_FILES[name][1] if name in OPENAI_FILES else name.split(":", 1)[0]
            if arch not in open_clip.list_models():
                raise ValueError(f"Unknown architecture '{name}' for random weights; use one of "
                                 f"{list(OPENAI_FILES)}, {TINY_NAME} or {MINIWORLD_NAME}")
            cfg = open_clip.get_model_config(arch)
            model = open_clip.model.CLIP(**cfg, quick_gelu=True, cast_dtype=torch.float16)
    convert_weights_to_lp(model, dtype=torch.float16)
    return as_clip(model.eval())


def load_clip_to_cpu(backbone_name: str, pretrained: bool = True) -> CLIP:
    """A CLIP on the CPU with OpenAI's weight dtypes (fp16 matrices), as CoOp's ``load_clip_to_cpu``.

    ``pretrained=False`` (``MODEL.BACKBONE.PRETRAINED False``) returns the architecture with random weights.
    """
    if backbone_name == TINY_NAME or not pretrained:
        return _build_random(backbone_name)
    path = resolve_weights(backbone_name)
    if ":" in backbone_name and not osp.isfile(backbone_name):
        arch = backbone_name.split(":", 1)[0]
        model = open_clip.create_model(arch, pretrained=path)
        if not isinstance(model, open_clip.model.CLIP):
            raise ValueError(f"'{backbone_name}' is not an OpenAI-style CLIP (custom text tower); not supported")
        convert_weights_to_lp(model, dtype=torch.float16)
        return as_clip(model.eval())
    return build_model(_read_openai_checkpoint(path))


def _preprocess_for(model: CLIP) -> Callable:
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return image_transform(size, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                           std=open_clip.OPENAI_DATASET_STD, interpolation="bicubic")


def load(name: str, device="cpu", jit: bool = False, pretrained: bool = True) -> Tuple[CLIP, Callable]:
    """OpenAI's ``clip.load``: ``(model, preprocess)``; fp32 on CPU, fp16 weights on CUDA."""
    if jit:
        raise NotImplementedError("jit=True is not supported: models are built with open_clip (use jit=False)")
    model = load_clip_to_cpu(name, pretrained=pretrained)
    device = torch.device(device)
    if device.type == "cpu":
        model = model.float()
    model = model.to(device)
    return model, _preprocess_for(model)
