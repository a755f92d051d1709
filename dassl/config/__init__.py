"""``get_cfg_default()`` and config-file merging that names the offending file."""
import yaml
from yacs.config import CfgNode

from .defaults import _C as cfg_default

__all__ = ["get_cfg_default", "clean_cfg", "merge_from_file", "merge_from_list", "CfgNode"]


def get_cfg_default():
    """A mutable copy of the default config tree (callers may add keys before freezing)."""
    return cfg_default.clone()


def clean_cfg(cfg, trainer):
    """Delete every ``cfg.TRAINER.<X>`` sub-node except ``NAME`` and ``trainer.upper()``."""
    cfg_dict = cfg.TRAINER
    for key in list(cfg_dict.keys()):
        if key == "NAME" or key == trainer.upper():
            continue
        cfg_dict.pop(key, None)


def merge_from_file(cfg, path):
    """``cfg.merge_from_file(path)`` whose errors name the file and the key, and say what to do."""
    import os.path as osp

    if not osp.isfile(path):
        raise FileNotFoundError(f'Config file not found: "{path}" (check the --config-file / '
                                "--dataset-config-file path)")
    try:
        cfg.merge_from_file(path)
    except KeyError as e:
        msg = e.args[0] if e.args else str(e)
        raise KeyError(f'{msg} (in config file "{path}"). Check the spelling; keys a trainer adds '
                       "exist only when that trainer's config is extended (trainers/config.py).") from None
    except ValueError as e:
        raise ValueError(f'{e} (in config file "{path}")') from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(f'config file "{path}" is not valid YAML{where}: {problem}. Fix the file '
                         "(indent nested keys with spaces, KEY: value)") from None


def merge_from_list(cfg, opts):
    """``cfg.merge_from_list(opts)`` with errors that name the command-line key."""
    if len(opts) % 2 != 0:
        raise ValueError(f"Config overrides must be KEY VALUE pairs, got an odd number of items: {opts}")
    try:
        cfg.merge_from_list(opts)
    except (KeyError, AssertionError) as e:
        msg = e.args[0] if e.args else str(e)
        raise KeyError(f"{msg} (given on the command line)") from None
    except ValueError as e:
        raise ValueError(f"{e} (given on the command line)") from None
