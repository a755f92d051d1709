"""Mini-world (procedural; 40 classes = 20 base + 20 new; README, "Mini-world demo").

``$DATA/miniworld/{images/<class>/*.png, split_zhou_MiniWorld.json}``, written by
``python -m miniworld.write --root $DATA`` (no download). The held-out style variants ``MiniWorldClutter``,
``MiniWorldFog``, ``MiniWorldNoise`` and ``MiniWorldTexture`` (folders ``miniworld_clutter`` ...) have the same
classes and layout,
for domain-shift / cross-dataset evaluation. Reading, few-shot caches and base/new subsampling are
:class:`~datasets.common.CoOpDataset`'s, as for every CoOp dataset.
"""
from dassl.data.datasets import DATASET_REGISTRY

from .common import CoOpDataset


class _MiniWorldBase(CoOpDataset):
    image_subdir = "images"
    NUM_CLASSES = 40
    EXPECTED_COUNTS = {"train": 960, "val": 320, "test": 2000}  # the default render (24 / 8 / 50 per class)
    variant = ""

    @classmethod
    def section(cls):
        return "MiniWorld"

    @classmethod
    def inspect(cls, root):
        report = super().inspect(root)
        if report.status == "missing":
            report.advice = [f"Render it (no download): python -m miniworld.write --root {root} "
                             f"--variant {cls.variant}"]
        return report

    @classmethod
    def missing_split_advice(cls, root):
        return (f"The split file is written with the images; render the tree again: python -m miniworld.write "
                f"--root {root} --variant {cls.variant} --force")

    def render_hint(self):
        return (f"The mini-world is rendered, not downloaded: python -m miniworld.write --root {self.root} "
                f"--variant {self.variant}")

    def _require_dir(self, path, what, extra=""):
        return super()._require_dir(path, what, extra=f"{extra} {self.render_hint()}".strip())

    def _require_file(self, path, what, extra=""):
        return super()._require_file(path, what, extra=f"{extra} {self.render_hint()}".strip())


@DATASET_REGISTRY.register()
class MiniWorld(_MiniWorldBase):
    """The downstream mini-world domain ("hazy photo" style)."""

    dataset_dir = variant = "miniworld"
    split_file = "split_zhou_MiniWorld.json"


@DATASET_REGISTRY.register()
class MiniWorldClutter(_MiniWorldBase):
    """Held-out style: textured backgrounds with small distractor shapes."""

    dataset_dir = variant = "miniworld_clutter"
    split_file = "split_zhou_MiniWorldClutter.json"


@DATASET_REGISTRY.register()
class MiniWorldFog(_MiniWorldBase):
    """Held-out style: foggy photos."""

    dataset_dir = variant = "miniworld_fog"
    split_file = "split_zhou_MiniWorldFog.json"


@DATASET_REGISTRY.register()
class MiniWorldNoise(_MiniWorldBase):
    """Held-out style: noisy photos."""

    dataset_dir = variant = "miniworld_noise"
    split_file = "split_zhou_MiniWorldNoise.json"


@DATASET_REGISTRY.register()
class MiniWorldTexture(_MiniWorldBase):
    """Held-out style: striped, high-contrast backgrounds."""

    dataset_dir = variant = "miniworld_texture"
    split_file = "split_zhou_MiniWorldTexture.json"


MINIWORLD_DATASETS = ["MiniWorld", "MiniWorldClutter", "MiniWorldFog", "MiniWorldNoise", "MiniWorldTexture"]
