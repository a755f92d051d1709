"""``extend_dataset_cfg``: the dataset-level keys this project adds to Dassl's ``DATASET`` node."""


def extend_dataset_cfg(cfg):
    """Add ``DATASET.SUBSAMPLE_CLASSES`` (CoOp's ``train.py``) and the project's dataset keys (in place)."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all | base | new
    # Few-shot sampling: Dassl's per-class draw, or SOT-GLP's (GalLoP's) class-size-proportional one.
    cfg.DATASET.FEWSHOT_SAMPLER = "per_class"  # per_class | stratified_proportional
    cfg.DATASET.FGVC_TRAIN_SPLIT = "train"  # train | trainval (FGVC-Aircraft; SOT-GLP trains on trainval)
    # Check that every image of the loaded splits exists, in bulk (one listing per folder), and
    # report missing files once with counts; False skips it (the loader then names the first).
    cfg.DATASET.CHECK_FILES = True
    return cfg
