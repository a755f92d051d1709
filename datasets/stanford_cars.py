"""Stanford Cars (196 classes; DATASETS.md).

``$DATA/stanford_cars/{cars_train/, cars_test/, devkit/, cars_test_annos_withlabels.mat,
split_zhou_StanfordCars.json}``; the JSON paths (``cars_train/...``) are relative to the dataset
folder. Without the JSON: ``devkit/cars_train_annos.mat`` (80/20 train/val),
``cars_test_annos_withlabels.mat`` and ``devkit/cars_meta.mat``; class name = meta name with the
trailing year moved to the front.
"""
import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .common import CoOpDataset, split_trainval


def year_first(name):
    """``"AM General Hummer SUV 2000"`` -> ``"2000 AM General Hummer SUV"``."""
    words = name.split(" ")
    return " ".join([words[-1]] + words[:-1])


@DATASET_REGISTRY.register()
class StanfordCars(CoOpDataset):
    """Stanford Cars with CoOp's split."""

    dataset_dir = "stanford_cars"
    image_subdir = ""
    split_file = "split_zhou_StanfordCars.json"
    split_relative_to_dataset_dir = True
    raw_files = ("devkit/cars_train_annos.mat", "cars_test_annos_withlabels.mat",
                 "devkit/cars_meta.mat")
    NUM_CLASSES = 196
    EXPECTED_COUNTS = {"train": 6509, "val": 1635, "test": 8041}

    def read_data(self, image_dir, anno_file, meta_file):
        from scipy.io import loadmat

        annos = loadmat(anno_file)["annotations"][0]
        meta = loadmat(meta_file)["class_names"][0]
        items = []
        for anno in annos:
            label = int(anno["class"][0, 0]) - 1
            items.append(Datum(impath=osp.join(self.dataset_dir, image_dir, str(anno["fname"][0])),
                               label=label, classname=year_first(str(meta[label][0]))))
        return items

    def read_raw_splits(self):
        d = self.dataset_dir
        meta = osp.join(d, "devkit", "cars_meta.mat")
        trainval = self.read_data("cars_train", osp.join(d, "devkit", "cars_train_annos.mat"), meta)
        test = self.read_data("cars_test", osp.join(d, "cars_test_annos_withlabels.mat"), meta)
        train, val = split_trainval(trainval)
        return train, val, test
