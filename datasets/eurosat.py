"""EuroSAT RGB (10 classes; DATASETS.md).

``$DATA/eurosat/{2750/<class>/*.jpg, split_zhou_EuroSAT.json}``. Class names are mapped by
``NEW_CNAMES`` (e.g. ``AnnualCrop`` -> ``Annual Crop Land``). Newer EuroSAT archives extract to
``EuroSAT_RGB/``: rename it to ``2750/``.
"""
from dassl.data.datasets import DATASET_REGISTRY

from .common import CoOpDataset, read_and_split_data

NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(CoOpDataset):
    """EuroSAT with CoOp's split and class names."""

    dataset_dir = "eurosat"
    image_subdir = "2750"
    split_file = "split_zhou_EuroSAT.json"
    image_dir_aliases = ("EuroSAT_RGB",)  # newer RGB archives; rename to 2750/
    NUM_CLASSES = 10
    EXPECTED_COUNTS = {"train": 13500, "val": 5400, "test": 8100}

    def read_raw_splits(self):
        return read_and_split_data(self.image_dir, new_cnames=NEW_CNAMES)
