"""Train or evaluate a trainer, with CoOp's / PromptSRC's command line.

    python train.py --root DATA --seed 1 --trainer CoOp \
        --dataset-config-file configs/datasets/oxford_pets.yaml \
        --config-file configs/trainers/CoOp/vit_b16_ep50.yaml \
        --output-dir output/... [--eval-only --model-dir DIR --load-epoch N] KEY VALUE ...

Config merge order (as upstream): defaults -> extend_cfg -> dataset file -> trainer file -> command-line
flags -> trailing ``KEY VALUE`` overrides. ``--load-epoch N`` loads exactly ``model.pth.tar-N``
(the Prompt-OT repo's copy added 1 to it; we do not).
"""
import argparse
import glob
import os.path as osp
import sys

import torch

from dassl.config import get_cfg_default, merge_from_file, merge_from_list
from dassl.engine import build_trainer
from dassl.utils import collect_env_info, set_random_seed, setup_logger, signals
from dassl.utils.fingerprint import check_or_record
from dassl.utils.provenance import RunRecord
from dassl.utils.runlock import RunLock, RunLockError

# Registration side effects: every dataset and trainer becomes available by name.
import datasets  # noqa: F401
import trainers  # noqa: F401
from trainers.config import extend_cfg


def print_args(args, cfg):
    print("***************")
    print("** Arguments **")
    print("***************")
    optkeys = list(args.__dict__.keys())
    optkeys.sort()
    for key in optkeys:
        print(f"{key}: {args.__dict__[key]}")
    print("************")
    print("** Config **")
    print("************")
    print(cfg)


def reset_cfg(cfg, args):
    """Copy the truthy command-line flags into ``cfg`` (so ``--seed 0`` is ignored, as upstream)."""
    if args.root:
        cfg.DATASET.ROOT = args.root
    if args.output_dir:
        cfg.OUTPUT_DIR = args.output_dir
    if args.resume:
        cfg.RESUME = args.resume
    if args.seed:
        cfg.SEED = args.seed
    if args.source_domains:
        cfg.DATASET.SOURCE_DOMAINS = args.source_domains
    if args.target_domains:
        cfg.DATASET.TARGET_DOMAINS = args.target_domains
    if args.transforms:
        cfg.INPUT.TRANSFORMS = args.transforms
    if args.trainer:
        cfg.TRAINER.NAME = args.trainer
    if args.backbone:
        cfg.MODEL.BACKBONE.NAME = args.backbone
    if args.head:
        cfg.MODEL.HEAD.NAME = args.head


def setup_cfg(args):
    cfg = get_cfg_default()
    extend_cfg(cfg)
    if args.dataset_config_file:
        merge_from_file(cfg, args.dataset_config_file)
    if args.config_file:
        merge_from_file(cfg, args.config_file)
    reset_cfg(cfg, args)
    merge_from_list(cfg, args.opts or [])
    if args.div is not None:  # Prompt-OT's --div: lambda, applied after all merges as upstream
        cfg.TRAINER.PROMPTOT.LAMBDA = args.div
    cfg.freeze()
    return cfg


def check_args(args):
    """Combinations that would silently do something else than asked: stop before anything is written."""
    if args.eval_only and args.load_epoch is not None and not args.model_dir:
        raise ValueError(f"--load-epoch {args.load_epoch} needs --model-dir (the output directory of the "
                         "training run to evaluate); without it untrained prompts would be scored")
    if args.resume:
        if not osp.isdir(args.resume):
            raise FileNotFoundError(f'--resume "{args.resume}" is not a directory (give the output directory '
                                    "of an earlier run, holding <model-name>/model.pth.tar-<epoch>)")
        if not glob.glob(osp.join(args.resume, "*", "model*.pth.tar*")):
            raise FileNotFoundError(f'--resume "{args.resume}" holds no checkpoint (<model-name>/'
                                    "model.pth.tar-<epoch>); training would start from scratch")


def main(args):
    check_args(args)
    cfg = setup_cfg(args)
    if cfg.SEED >= 0:
        print(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    try:
        lock = RunLock(cfg.OUTPUT_DIR).acquire()
    except OSError as e:
        raise OSError(e.errno, f"cannot write to the output directory {cfg.OUTPUT_DIR} ({e.strerror}); choose "
                               "another --output-dir or fix its permissions") from None
    try:
        if not args.eval_only and not args.no_train:
            if cfg.RESUME:
                check_or_record(cfg, cfg.RESUME, record=False)
            check_or_record(cfg, cfg.OUTPUT_DIR)
        signals.install()
        run(args, cfg)
    finally:
        lock.release()


def run(args, cfg):
    setup_logger(cfg.OUTPUT_DIR)

    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True

    print_args(args, cfg)
    print("Collecting env info ...")
    print(f"** System info **\n{collect_env_info()}\n")

    with RunRecord(cfg) as record:  # <OUTPUT_DIR>/provenance.json, completed at the end (or on failure)
        record.trainer = build_trainer(cfg)
        run_trainer(record.trainer, args)


def run_trainer(trainer, args):
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return
    if not args.no_train:
        trainer.train()


def build_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=str, default="", help="path to dataset")
    parser.add_argument("--output-dir", type=str, default="", help="output directory")
    parser.add_argument("--resume", type=str, default="", help="checkpoint directory (from which the training resumes)")
    parser.add_argument("--seed", type=int, default=-1, help="only positive value enables a fixed seed")
    parser.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    parser.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    parser.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    parser.add_argument("--config-file", type=str, default="", help="path to config file")
    parser.add_argument("--dataset-config-file", type=str, default="", help="path to config file for dataset setup")
    parser.add_argument("--trainer", type=str, default="", help="name of trainer")
    parser.add_argument("--backbone", type=str, default="", help="name of CNN backbone")
    parser.add_argument("--head", type=str, default="", help="name of head")
    parser.add_argument("--eval-only", action="store_true", help="evaluation only")
    parser.add_argument("--model-dir", type=str, default="", help="load model from this directory for eval-only mode")
    parser.add_argument("--load-epoch", type=int, help="load model weights at this epoch for evaluation")
    parser.add_argument("--no-train", action="store_true", help="do not call trainer.train()")
    parser.add_argument("--div", type=float, default=None,
                        help="Prompt-OT's lambda; overrides TRAINER.PROMPTOT.LAMBDA when given")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="modify config options using the command-line")
    return parser


def one_line(e):
    """The message of ``e`` on one line (a data-loader worker's error carries the worker's traceback)."""
    msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    lines = [line.strip() for line in str(msg).splitlines() if line.strip()]
    if len(lines) > 1 and any(line.startswith("Traceback") for line in lines):
        return lines[-1]
    return " ".join(lines)


def cli(argv=None):
    """``python train.py ...``; returns the exit status.

    0 done; 2 bad input or a stop explained in one line (nothing overwritten); 3 a checkpoint was written on
    SIGUSR1 (rerun the same command to resume); 143 SIGTERM; 1 anything unexpected (with its traceback).
    """
    try:
        main(build_parser().parse_args(argv))
    except signals.Preempted as e:
        print(e.message, file=sys.__stderr__)
        return signals.EXIT_PREEMPTED
    except (KeyError, ValueError, OSError, RunLockError, FloatingPointError) as e:
        # Configuration, input and resource errors: one clear line, no stack trace.
        print(f"Error: {one_line(e)}", file=sys.__stderr__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
