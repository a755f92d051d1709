"""``extend_cfg``: the config keys the trainers and datasets of this project add to Dassl's defaults.

Each method's node is added here, in one place, so every config file and command-line override is
checked against the same tree whatever ``--trainer`` is given (as CoOp's / PromptSRC's ``train.py``).
"""
from yacs.config import CfgNode as CN

from datasets.config import extend_dataset_cfg


def _vl_prompt_node(n_ctx):
    """The keys of PromptSRC's ``train.py`` for independent vision-language prompts (IVLP, PromptSRC, Prompt-OT)."""
    node = CN()
    node.N_CTX_VISION = n_ctx
    node.N_CTX_TEXT = n_ctx
    node.CTX_INIT = "a photo of a"
    node.PREC = "fp16"
    node.PROMPT_DEPTH_VISION = 9
    node.PROMPT_DEPTH_TEXT = 9
    return node


def extend_cfg(cfg):
    """Add the baseline, method and project dataset keys to ``cfg`` (in place)."""
    # CoOp / CoCoOp (CoOp:train.py)
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = 16  # number of context vectors
    cfg.TRAINER.COOP.CSC = False  # class-specific context
    cfg.TRAINER.COOP.CTX_INIT = ""  # initialization words
    cfg.TRAINER.COOP.PREC = "fp16"  # fp16 | bf16 | fp32 | amp
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"  # middle | end | front

    cfg.TRAINER.COCOOP = CN()
    cfg.TRAINER.COCOOP.N_CTX = 16
    cfg.TRAINER.COCOOP.CTX_INIT = ""
    cfg.TRAINER.COCOOP.PREC = "fp16"

    # MaPLe / PromptSRC / IVLP (PSRC:train.py)
    cfg.TRAINER.MAPLE = CN()
    cfg.TRAINER.MAPLE.N_CTX = 2
    cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"
    cfg.TRAINER.MAPLE.PREC = "fp16"
    cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9

    cfg.TRAINER.PROMPTSRC = _vl_prompt_node(n_ctx=4)
    cfg.TRAINER.PROMPTSRC.TEXT_LOSS_WEIGHT = 25
    cfg.TRAINER.PROMPTSRC.IMAGE_LOSS_WEIGHT = 10
    cfg.TRAINER.PROMPTSRC.GPA_MEAN = 15
    cfg.TRAINER.PROMPTSRC.GPA_STD = 1

    cfg.TRAINER.IVLP = _vl_prompt_node(n_ctx=2)

    # Prompt-OT: a fork of PromptSRC, so the same upstream keys and defaults (the SCL/GPA keys are unused by
    # Prompt-OT); project keys after them, promptot.md §8.5
    cfg.TRAINER.PROMPTOT = cfg.TRAINER.PROMPTSRC.clone()
    cfg.TRAINER.PROMPTOT.LAMBDA = 10.0  # weight of the OT term (upstream --div)
    cfg.TRAINER.PROMPTOT.OT_SOLVER = "emd"  # emd | hungarian | sinkhorn
    cfg.TRAINER.PROMPTOT.OT_EPS = 0.0  # entropic regularisation, sinkhorn only (> 0 there)
    cfg.TRAINER.PROMPTOT.OT_ITERS = 10  # sinkhorn iteration cap
    cfg.TRAINER.PROMPTOT.OT_COST_SCALE = 0.5  # eta1: cost = scale * squared L2
    cfg.TRAINER.PROMPTOT.OT_MODALITY_WEIGHTS = (1.0, 1.0)  # image, text parts of the squared distance
    cfg.TRAINER.PROMPTOT.ZS_TEXT = "template0"  # template0 | ensemble60

    # Datasets (DATASET.SUBSAMPLE_CLASSES from CoOp; the others are project keys, datasets.md §12)
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all | base | new
    cfg.DATASET.FEWSHOT_SAMPLER = "per_class"  # per_class | stratified_proportional
    cfg.DATASET.FGVC_TRAIN_SPLIT = "train"  # train | trainval
    # Check that every image of the loaded splits exists, in bulk (one listing per folder), and
    # report missing files once with counts; False skips it (the loader then names the first).
    cfg.DATASET.CHECK_FILES = True
    extend_dataset_cfg(cfg)  # ImageFolder / CSVDataset keys
    return cfg
