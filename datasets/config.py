"""Config keys of the dataset package that Dassl's defaults do not have."""


def extend_dataset_cfg(cfg):
    """Add the keys of ``ImageFolder`` / ``CSVDataset`` (your own data; README, "Your own dataset") in place."""
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
