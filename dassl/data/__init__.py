"""Data pipeline. ``DataManager`` & co. are imported lazily, so ``dassl.data.datasets`` (used by the
dataset checker) does not pay for torchvision's import."""

__all__ = ["DataManager", "DatasetWrapper", "build_data_loader"]


def __getattr__(name):
    if name in __all__:
        from . import data_manager

        return getattr(data_manager, name)
    raise AttributeError(f"module 'dassl.data' has no attribute '{name}'")
