"""Oxford-IIIT Pets (37 breeds; DATASETS.md).

``$DATA/oxford_pets/{images/, annotations/, split_zhou_OxfordPets.json}``. Without the split JSON
the split is created from ``annotations/trainval.txt`` (80/20 train/val) and ``test.txt``; a
line is ``<imname> <classid> <species> <breedid>``, class name = image name minus its last ``_``
token, lower-cased; label = classid - 1.
"""
import os.path as osp

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .common import CoOpDataset, read_lines, split_trainval


@DATASET_REGISTRY.register()
class OxfordPets(CoOpDataset):
    """Oxford-IIIT Pets with CoOp's split."""

    dataset_dir = "oxford_pets"
    image_subdir = "images"
    split_file = "split_zhou_OxfordPets.json"
    raw_files = ("annotations/trainval.txt", "annotations/test.txt")
    NUM_CLASSES = 37
    EXPECTED_COUNTS = {"train": 2944, "val": 736, "test": 3669}

    @property
    def anno_dir(self):
        return osp.join(self.dataset_dir, "annotations")

    def read_data(self, split_file):
        """Items of one annotation list (``trainval.txt`` / ``test.txt``)."""
        items = []
        for line in read_lines(osp.join(self.anno_dir, split_file)):
            imname, label, _species, _breed_id = line.split(" ")
            breed = "_".join(imname.split("_")[:-1]).lower()
            items.append(Datum(impath=osp.join(self.image_dir, imname + ".jpg"),
                               label=int(label) - 1, classname=breed))
        return items

    def read_raw_splits(self):
        trainval = self.read_data("trainval.txt")
        test = self.read_data("test.txt")
        train, val = split_trainval(trainval)
        return train, val, test
