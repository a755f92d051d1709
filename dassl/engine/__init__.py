from .build import TRAINER_REGISTRY, build_trainer  # noqa: F401
from .trainer import SimpleNet, SimpleTrainer, TrainerBase, TrainerX, TrainerXU  # noqa: F401
