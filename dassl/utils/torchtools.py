"""Checkpoint I/O with Dassl's layout and keys; writes are atomic (temp file + rename)."""
import errno
import os
import os.path as osp
import pickle
import re
import shutil
import warnings
from collections import OrderedDict
from functools import partial

import torch

from .tools import mkdir_if_missing

__all__ = [
    "save_checkpoint", "load_checkpoint", "resume_from_checkpoint", "load_pretrained_weights",
    "count_num_param", "atomic_torch_save", "get_rng_state", "set_rng_state", "CheckpointWriteError",
    "find_resume_checkpoint", "remove_stale_temp_files",
]

TEMP_RE = re.compile(r"\.tmp\d*$")  # what atomic_torch_save / _atomic_write_text leave behind when killed
EPOCH_FILE_RE = re.compile(r"^model\.pth\.tar-(\d+)$")


class CheckpointWriteError(OSError):
    """A checkpoint could not be written (disk full, quota, permissions); the previous one is untouched."""


def _space_error(e):
    """The out-of-space ``OSError`` behind ``e`` (torch may wrap it in a RuntimeError), or None."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return e
        e = e.__cause__ or e.__context__
    return None


def _write_error(fpath, e):
    what = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
            errno.EFBIG: "the file size limit is exceeded"}.get(e.errno, e.strerror or str(e))
    kept = _pointer_target(osp.dirname(fpath))
    kept = f"the previous checkpoint {kept} is kept" if kept else "no earlier checkpoint exists"
    err = CheckpointWriteError(f"could not write checkpoint {fpath}: {what}; {kept}. "
                               "Free some space, then rerun the same command to resume.")
    err.errno = e.errno
    return err


def atomic_torch_save(obj, fpath):
    """``torch.save`` to a temp file in the same folder, fsync, then rename: a crash never leaves half a file."""
    from .faults import crashpoint, wrap_file

    tmp = f"{fpath}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, wrap_file(f))
            crashpoint("checkpoint written, before fsync")
            f.flush()
            os.fsync(f.fileno())
        crashpoint("checkpoint synced, before rename")
        os.replace(tmp, fpath)
        crashpoint("checkpoint renamed")
    except Exception as e:
        cause = _space_error(e)
        if cause is None or isinstance(e, CheckpointWriteError):
            raise
        raise _write_error(fpath, cause) from None
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def _atomic_write_text(fpath, text):
    from .faults import crashpoint

    tmp = f"{fpath}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        crashpoint("pointer written, before rename")
        os.replace(tmp, fpath)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def _pointer_target(fdir):
    """The file named by ``fdir/checkpoint`` (a path), or None when there is no readable pointer."""
    try:
        with open(osp.join(fdir, "checkpoint")) as f:
            name = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return osp.join(fdir, name) if name else None


def remove_stale_temp_files(directory, names):
    """Delete the temp files of checkpoint writes that were killed (``<dir>/<name>/*.tmp<pid>``).

    Call it only while holding the run directory's lock: then no other process is writing there.
    """
    removed = []
    for name in names:
        fdir = osp.join(directory, name)
        if not osp.isdir(fdir):
            continue
        for f in sorted(os.listdir(fdir)):
            if TEMP_RE.search(f):
                os.remove(osp.join(fdir, f))
                removed.append(osp.join(fdir, f))
    for path in removed:
        print(f"Removed the temp file of an interrupted checkpoint write: {path}")
    return removed


def find_resume_checkpoint(fdir):
    """``(path, checkpoint dict)`` to resume from in ``fdir``, or ``(None, None)`` when nothing loads.

    The file named by ``fdir/checkpoint`` is used when it loads; otherwise (no pointer, a pointer to a
    missing or damaged file: a run killed while saving) the newest loadable ``model.pth.tar-N`` is used,
    with a one-line warning.
    """
    pointed = _pointer_target(fdir)
    problem = "no 'checkpoint' file" if pointed is None else None
    if pointed is not None:
        ckpt, problem = _try_load(pointed)
        if ckpt is not None:
            return pointed, ckpt
    files = [f for f in os.listdir(fdir) if EPOCH_FILE_RE.match(f)] if osp.isdir(fdir) else []
    for f in sorted(files, key=lambda f: -int(EPOCH_FILE_RE.match(f).group(1))):
        path = osp.join(fdir, f)
        if path == pointed:
            continue
        ckpt, _ = _try_load(path)
        if ckpt is not None:
            print(f"Warning: {fdir}: {problem}; resuming from {f}, the newest checkpoint that loads")
            return path, ckpt
    if files or pointed is not None:
        print(f"Warning: {fdir}: {problem} and no model.pth.tar-N loads; training starts from scratch")
    return None, None


def _try_load(path):
    """``(checkpoint, None)`` or ``(None, why)`` without printing a traceback."""
    if not osp.isfile(path):
        return None, f"{osp.basename(path)} is missing"
    try:
        ckpt = torch.load(path, map_location=None if torch.cuda.is_available() else "cpu", weights_only=False)
    except Exception as e:  # truncated zip, bad pickle, ...: try an older file
        return None, f"{osp.basename(path)} does not load ({type(e).__name__}: {str(e).splitlines()[0][:120]})"
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        return None, f"{osp.basename(path)} is not a Dassl checkpoint"
    return ckpt, None


def save_checkpoint(state, save_dir, is_best=False, remove_module_from_keys=True, model_name=""):
    """Save ``state`` as ``save_dir/model.pth.tar-<epoch>`` (or ``model_name``) and point ``checkpoint`` at it.

    The dict keeps Dassl's keys: ``state_dict``, ``epoch``, ``optimizer``, ``scheduler``, ``val_result``.
    """
    mkdir_if_missing(save_dir)
    if remove_module_from_keys:
        state_dict = state["state_dict"]
        new_state_dict = OrderedDict()
        for k, v in state_dict.items():
            if k.startswith("module."):
                k = k[7:]
            new_state_dict[k] = v
        state["state_dict"] = new_state_dict
    epoch = state["epoch"]
    if not model_name:
        model_name = "model.pth.tar-" + str(epoch)
    fpath = osp.join(save_dir, model_name)
    atomic_torch_save(state, fpath)
    print(f"Checkpoint saved to {fpath}")
    _atomic_write_text(osp.join(save_dir, "checkpoint"), f"{osp.basename(fpath)}\n")
    if is_best:
        best_fpath = osp.join(osp.dirname(fpath), "model-best.pth.tar")
        tmp = best_fpath + ".tmp"
        shutil.copy(fpath, tmp)
        os.replace(tmp, best_fpath)
        print(f'Best checkpoint saved to "{best_fpath}"')


def load_checkpoint(fpath):
    """Load a checkpoint we trust (ours or a released Dassl one) on CPU unless CUDA is available.

    ``weights_only=False`` is required: Dassl checkpoints contain pickled scheduler objects.
    Only call this on files you trust.
    """
    if fpath is None:
        raise ValueError("File path is None")
    fpath = osp.abspath(osp.expanduser(fpath))
    if not osp.exists(fpath):
        raise FileNotFoundError(f'File is not found at "{fpath}"')
    map_location = None if torch.cuda.is_available() else "cpu"
    try:
        checkpoint = torch.load(fpath, map_location=map_location, weights_only=False)
    except UnicodeDecodeError:
        pickle.load = partial(pickle.load, encoding="latin1")
        pickle.Unpickler = partial(pickle.Unpickler, encoding="latin1")
        checkpoint = torch.load(fpath, pickle_module=pickle, map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError) as e:
        print(f'Unable to load checkpoint from "{fpath}"')
        raise ValueError(f'checkpoint "{fpath}" is damaged (truncated or not a checkpoint: '
                         f"{str(e).splitlines()[0][:120]}). Retrain, or load another epoch.") from e
    except Exception:
        print(f'Unable to load checkpoint from "{fpath}"')
        raise
    return checkpoint


def resume_from_checkpoint(fdir, model, optimizer=None, scheduler=None, load_state=None, found=None):
    """Restore model/optimizer/scheduler from the file named in ``fdir/checkpoint``; return its epoch.

    ``load_state(state_dict)``, when given, replaces the strict ``model.load_state_dict`` (trainers whose
    checkpoints hold only the learnable tensors). ``found``: what :func:`find_resume_checkpoint` returned
    for ``fdir`` (saves loading the file twice).
    """
    fpath, checkpoint = found or find_resume_checkpoint(fdir)
    if fpath is None:
        raise FileNotFoundError(f"no loadable checkpoint in {fdir}")
    print(f'Loading checkpoint from "{fpath}"')
    if load_state is not None:
        load_state(checkpoint["state_dict"])
    else:
        model.load_state_dict(checkpoint["state_dict"])
    print("Loaded model weights")
    if optimizer is not None and checkpoint.get("optimizer") is not None:
        optimizer.load_state_dict(checkpoint["optimizer"])
        print("Loaded optimizer")
    if scheduler is not None and checkpoint.get("scheduler") is not None:
        scheduler.load_state_dict(checkpoint["scheduler"])
        print("Loaded scheduler")
    if checkpoint.get("rng_state") is not None:
        set_rng_state(checkpoint["rng_state"])
        print("Restored RNG state")
    start_epoch = checkpoint["epoch"]
    print(f"Previous epoch: {start_epoch}")
    return start_epoch


def get_rng_state():
    """Python, NumPy, torch CPU and CUDA RNG states (saved in checkpoints so a resume replays exactly)."""
    import random

    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore what :func:`get_rng_state` returned."""
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def load_pretrained_weights(model, weight_path):
    """Load the entries of a checkpoint whose names and shapes match ``model`` (non-strict)."""
    checkpoint = load_checkpoint(weight_path)
    state_dict = checkpoint["state_dict"] if "state_dict" in checkpoint else checkpoint
    model_dict = model.state_dict()
    new_state_dict = OrderedDict()
    matched_layers, discarded_layers = [], []
    for k, v in state_dict.items():
        if k.startswith("module."):
            k = k[7:]
        if k in model_dict and model_dict[k].size() == v.size():
            new_state_dict[k] = v
            matched_layers.append(k)
        else:
            discarded_layers.append(k)
    model_dict.update(new_state_dict)
    model.load_state_dict(model_dict)
    if len(matched_layers) == 0:
        warnings.warn(f"Cannot load {weight_path} (check the key names manually)")
    else:
        print(f"Successfully loaded pretrained weights from {weight_path}")
        if len(discarded_layers) > 0:
            print(f"Layers discarded due to unmatched keys or size: {discarded_layers}")


def count_num_param(model=None, params=None):
    """Number of parameters of ``model`` (or of the iterable ``params``)."""
    if model is not None:
        return sum(p.numel() for p in model.parameters())
    if params is not None:
        s = 0
        for p in params:
            if isinstance(p, dict):
                s += p["params"].numel()
            else:
                s += p.numel()
        return s
    raise ValueError("model and params must be provided")
