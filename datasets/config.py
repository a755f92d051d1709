"""``extend_dataset_cfg``: the dataset-level keys this project adds to Dassl's ``DATASET`` node."""


def extend_dataset_cfg(cfg):
    """Add ``DATASET.SUBSAMPLE_CLASSES`` (CoOp's ``train.py``), the project's dataset keys and the keys of
    ``ImageFolder`` / ``CSVDataset`` (your own data; README, "Your own dataset"), in place."""
    cfg.DATASET.SUBSAMPLE_CLASSES = "all"  # all | base | new
    # Few-shot sampling: Dassl's per-class draw, or SOT-GLP's (GalLoP's) class-size-proportional one.
    cfg.DATASET.FEWSHOT_SAMPLER = "per_class"  # per_class | stratified_proportional
    cfg.DATASET.FGVC_TRAIN_SPLIT = "train"  # train | trainval (FGVC-Aircraft; SOT-GLP trains on trainval)
    # Check that every image of the loaded splits exists, in bulk (one listing per folder), and
    # report missing files once with counts; False skips it (the loader then names the first).
    cfg.DATASET.CHECK_FILES = True
    # Sub-folder of DATASET.ROOT that holds the data ("" = DATASET.ROOT itself).
    cfg.DATASET.FOLDER = ""
    # CSVDataset: the CSV file, relative to the data folder (rows "path,label[,split]", paths relative to it).
    cfg.DATASET.CSV_FILE = "data.csv"
    # Optional class-name file, relative to the data folder: one "<folder or label> <class name>" per line;
    # the file's order is the label order (so the first half of its classes are the base classes).
    cfg.DATASET.CLASSNAMES_FILE = ""
    # Train and val fractions per class when the data comes unsplit (the rest is test): CoOp's 50 / 20 / 30.
    # Val is carved from train with the val fraction when only train/ and test/ are given.
    cfg.DATASET.SPLIT_RATIOS = (0.5, 0.2)
    # Seed of the split file written the first time (split_zhou_<Name>.json; reused afterwards, never
    # overwritten), independent of the run's SEED so that every seed of a sweep shares one split.
    cfg.DATASET.SPLIT_SEED = 1
    return cfg
