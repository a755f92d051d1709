"""UCF101 middle frames (101 actions; DATASETS.md).

``$DATA/ucf101/{UCF-101-midframes/<Action_Name>/*.jpg, split_zhou_UCF101.json}``. Without the
split JSON: ``ucfTrainTestlist/classInd.txt`` (label = index - 1) and ``trainlist01.txt`` (80/20
train/val) / ``testlist01.txt``; the CamelCase action is split on capitals and joined with ``_``
(``ApplyEyeMakeup`` -> ``Apply_Eye_Makeup``, the folder and class name); ``.avi`` -> ``.jpg``.
"""
import os.path as osp
import re

from dassl.data.datasets import DATASET_REGISTRY, Datum

from .common import CoOpDataset, read_lines, split_trainval


def split_camel_case(action):
    """``"ApplyEyeMakeup"`` -> ``"Apply_Eye_Makeup"``."""
    return "_".join(re.findall("[A-Z][^A-Z]*", action))


@DATASET_REGISTRY.register()
class UCF101(CoOpDataset):
    """UCF101 (one middle frame per video) with CoOp's split."""

    dataset_dir = "ucf101"
    image_subdir = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"
    raw_files = ("ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/trainlist01.txt",
                 "ucfTrainTestlist/testlist01.txt")
    NUM_CLASSES = 101
    EXPECTED_COUNTS = {"train": 7639, "val": 1898, "test": 3783}

    def read_data(self, cname2lab, text_file):
        items = []
        for line in read_lines(osp.join(self.dataset_dir, text_file)):
            action, filename = line.split(" ")[0].split("/")
            renamed = split_camel_case(action)
            items.append(Datum(impath=osp.join(self.image_dir, renamed, filename.replace(".avi", ".jpg")),
                               label=cname2lab[action], classname=renamed))
        return items

    def read_raw_splits(self):
        cname2lab = {}
        for line in read_lines(osp.join(self.dataset_dir, "ucfTrainTestlist", "classInd.txt")):
            label, classname = line.split(" ")
            cname2lab[classname] = int(label) - 1
        trainval = self.read_data(cname2lab, "ucfTrainTestlist/trainlist01.txt")
        test = self.read_data(cname2lab, "ucfTrainTestlist/testlist01.txt")
        train, val = split_trainval(trainval)
        return train, val, test
