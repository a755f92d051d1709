"""The CoOp benchmark datasets, ImageNet variants and ImageNet OOD sets.

Importing this package registers every dataset in ``dassl.data.datasets.DATASET_REGISTRY`` under
its upstream class name (``cfg.DATASET.NAME``). See DATASETS.md for layouts and
``python -m datasets.check --root DATA`` to check a data root.
"""
from . import (  # noqa: F401  (imports register the classes)
    caltech101,
    custom,
    dtd,
    eurosat,
    fgvc_aircraft,
    food101,
    imagenet,
    imagenet_a,
    imagenet_r,
    imagenet_sketch,
    imagenetv2,
    miniworld,
    ood,
    oxford_flowers,
    oxford_pets,
    stanford_cars,
    sun397,
    ucf101,
)

# The 11 CoOp "train" datasets (base-to-new, few-shot), then the test-only sets.
TRAIN_DATASETS = ["ImageNet", "Caltech101", "OxfordPets", "StanfordCars", "OxfordFlowers",
                  "Food101", "FGVCAircraft", "SUN397", "DescribableTextures", "EuroSAT", "UCF101"]
VARIANT_DATASETS = ["ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR"]
OOD_DATASET_NAMES = ["OODiNaturalist", "OODSUN", "OODPlaces", "OODTextures"]
ALL_DATASETS = TRAIN_DATASETS + VARIANT_DATASETS + OOD_DATASET_NAMES
# Procedural datasets rendered by this repository (python -m miniworld.write), not part of the benchmarks above.
SYNTHETIC_DATASETS = list(miniworld.MINIWORLD_DATASETS)
# Your own data (README, "Your own dataset"): checked by datasets.check only when named.
OWN_DATASETS = ["ImageFolder", "CSVDataset"]
