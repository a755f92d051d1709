"""``extend_cfg``: the config keys the trainers (and, via ``datasets.config``, the datasets) add to Dassl's defaults.

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


def _align_node():
    """ALIGN (upstream code name MMP): the keys of its ``train.py`` (values as there, except ``USECT``, whose
    upstream default True selects a dead code path) and the project's fidelity switches (defaults = the
    released code; see the README's ALIGN section)."""
    node = CN()
    node.N_CTX = 2
    node.CTX_INIT = "a photo of a"  # split on tab characters: piece s initialises prompt set s
    node.PREC = "fp16"
    node.TEXT_PROMPT_DEPTH = 1  # depth of both branches (the configs use 9)
    node.VISION_PROMPT_DEPTH = 1  # read by no upstream code; kept for config compatibility
    node.TEXT_PROMPT_NUMBER = 4  # N
    node.VISION_PROMPT_NUMBER = 4  # M (must equal N)
    node.HIERARCHICAL = True  # token-level OT inside the prompt-level cost
    node.USECT = False  # upstream's conditional-transport path is dead code: not implemented
    # Project keys (fidelity switches; defaults = released code)
    node.TOKEN_TERM = "similarity"  # similarity (code: + <T, S>) | distance (paper Eq. 6: + <T, 1 - S>)
    node.COST_FORM = "additive"  # additive: (1 - s_g) + BETA * term | convex (Eq. 9): (1 - BETA)(1 - s_g) + BETA * term
    node.BETA = 1.0  # weight of the token term
    node.LOGITS = "global"  # global: scale * <T, s_g> (code) | full_cost: scale * (1 - <T, cost>)
    node.OT_EPS = 0.1  # entropic regularisation of both levels
    node.OT_MAX_ITER = 100
    node.OT_THRESH = 1e-2  # upstream stop test: mean |r - r_prev| of the call below this
    node.OT_DTYPE = "model"  # model: Sinkhorn in CLIP's dtype (fp16 under PREC fp16, as upstream) | fp32
    node.TOKEN_SLICE = "prompt0_eot"  # prompt0_eot (code: prompt 0's EOT for all prompts) | per_prompt
    node.EPOCH_OVERRIDE = True  # upstream setup_cfg: all-class runs train 30/50/80 epochs by shots (ImageNet 20)
    node.CLASS_CHUNK = 0  # classes per token-level batch; 0: automatic from free memory
    node.GRAD_CHECKPOINT = False  # checkpoint the transformer blocks (training memory for many classes)
    return node


def resolve_aliases(cfg, node: str, alias: str, defaults):
    """Copy every key of ``cfg.TRAINER[alias]`` that differs from ``defaults`` into ``cfg.TRAINER[node]`` (the
    upstream name of a trainer's keys acts as an alias). A key set differently under both names is an error."""
    target, source = cfg.TRAINER[node], cfg.TRAINER[alias]
    for key, value in source.items():
        if value == defaults[key]:
            continue
        if target[key] != defaults[key] and target[key] != value:
            raise ValueError(f"TRAINER.{alias}.{key} ({value}) and TRAINER.{node}.{key} ({target[key]}) disagree: "
                             f"TRAINER.{alias}.* are aliases of TRAINER.{node}.*; set one of them")
        target[key] = value


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
    # Project key: classes per text-encoder call when the B x C per-image prompts are encoded (bounds memory:
    # B * CLASS_CHUNK sequences at a time; 0 = all classes in one call).
    cfg.TRAINER.COCOOP.CLASS_CHUNK = 100

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
    # Project key: frozen text target = mean of the raw template features, then normalised (PromptSRC's
    # fixed_embeddings: "raw"), or mean of the normalised template features ("normalized").
    cfg.TRAINER.PROMPTSRC.TEXT_TARGET_MEAN = "raw"  # raw | normalized

    cfg.TRAINER.IVLP = _vl_prompt_node(n_ctx=2)

    # Prompt-OT: a fork of PromptSRC, so the same upstream keys and defaults (the SCL/GPA keys are unused by
    # Prompt-OT; TEXT_TARGET_MEAN matters with ZS_TEXT ensemble60); project keys after them
    cfg.TRAINER.PROMPTOT = cfg.TRAINER.PROMPTSRC.clone()
    cfg.TRAINER.PROMPTOT.LAMBDA = 10.0  # weight of the OT term (upstream --div)
    cfg.TRAINER.PROMPTOT.OT_SOLVER = "emd"  # emd | hungarian | sinkhorn
    cfg.TRAINER.PROMPTOT.OT_EPS = 0.0  # entropic regularisation, sinkhorn only (> 0 there)
    cfg.TRAINER.PROMPTOT.OT_ITERS = 10  # sinkhorn iteration cap
    cfg.TRAINER.PROMPTOT.OT_COST_SCALE = 0.5  # eta1: cost = scale * squared L2
    cfg.TRAINER.PROMPTOT.OT_MODALITY_WEIGHTS = (1.0, 1.0)  # image, text parts of the squared distance
    cfg.TRAINER.PROMPTOT.ZS_TEXT = "template0"  # template0 | ensemble60

    # ALIGN; TRAINER.MMP.* (upstream's names) are aliases, merged by the trainer (``resolve_aliases``)
    cfg.TRAINER.ALIGN = _align_node()
    cfg.TRAINER.MMP = _align_node()

    # SOT-GLP (Deniz2304988/SOT-GLP: sot-glp/train_sot_glp.py flags, run_*.sh values; released defaults)
    t = cfg.TRAINER.SOTGLP = CN()
    t.N_CTX = 4  # context tokens (the template "A photo of a {}")
    t.CTX_INIT = "a photo of a"  # every global prompt starts as these embeddings
    t.N_GLOBAL_PROMPTS = 3  # --n_global_prompts (run_*.sh; eval_imagenet.sh / GalLoP: 4)
    t.N_LOCAL_PROMPTS = 4  # --n_local_prompts (per dataset: configs/trainers/SOTGLP/<dataset>.yaml)
    t.LOCAL_INIT = "random"  # random (Xavier-uniform) | gram (orthonormal x 0.001)
    t.TOPK = 10  # max(--topk): patches kept per image and class
    t.OT_EPS = 0.1  # entropic regularisation (hard-coded upstream)
    t.OT_MAX_ITER = 100  # Sinkhorn iteration cap (hard-coded upstream)
    t.OT_THRESH = 0.01  # upstream stop rule: mean |r - r_prev| over the batch's problems
    t.OT_STOP_RULE = "upstream"  # upstream | tol (each problem until its row-marginal L1 error < OT_TOL)
    t.OT_TOL = 1e-6  # OT_STOP_RULE tol only
    t.OT_PLAN = "sinkhorn"  # sinkhorn | uniform (PLOT issue #6 ablation: T = 1 / (k N))
    t.OT_UNBALANCED = False  # the commented-out unbalanced variant (KL marginals, exponent reg_m / (reg_m + eps))
    t.OT_REG_M = 100.0
    t.LOCAL_SCORE_NORM = "mean_over_prompts"  # released <T, S> / N | sum (PLOT's <T, S>)
    t.GLOBAL_DROPOUT_P = 0.75  # --global_dropout_p: keeps max(G - floor(p G), 1) random prompts per sample
    t.USE_GLOBAL_LOSS = True
    t.USE_LOCAL_LOSS = True
    t.LEARN_LOCAL_PROJ = True  # False: projection-free (local_proj frozen at the identity)
    t.LEARN_GLOBAL_PROMPT = True
    t.LEARN_LOCAL_PROMPTS = True
    t.V2V_START_LAYER = 0  # first dual-path block (0: all, as released; 6 of 12: CLIP Surgery)
    t.V2V_FIRST_LAYER_ALIAS = True  # released: x_res = x_s + ori_s + sum vv; False: x_s + sum vv
    t.OOD_METHOD = "GL-MCM"  # GL-MCM | MCM | L-MCM (--ood_method)
    t.OOD_TEMP = 1000.0  # --ood_temp_scale (GalLoP: 1)
    t.EVAL_OOD = False  # OOD evaluation after the final test (ImageNet config: True)
    # Project key: OOD sets (datasets/ood.py names: iNaturalist, SUN, Places, Textures; or
    # "held_out_classes": the source's new classes, with DATASET.SUBSAMPLE_CLASSES base); empty = ImageNet's four
    t.OOD_DATASETS = []
    t.EVAL_FREQ = 10  # --eval_freq: test every EVAL_FREQ epochs (and after the last); 0 = last only
    t.CHECKPOINTING_SEGMENTS = 0  # --checkpointing_segments of the text encoder (0: off)
    t.CLASS_CHUNK = 0  # Project key: classes per text-encoder call and per local-similarity block (0: all)
    t.PREC = "amp"  # --use_fp16: autocast fp16 + GradScaler on CUDA (bf16 autocast on a CPU) | fp32 | bf16 | fp16

    extend_dataset_cfg(cfg)
    return cfg
