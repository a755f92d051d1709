"""The trainers. Importing this package registers every trainer in ``dassl.engine.TRAINER_REGISTRY``."""
from . import align, cocoop, coop, ivlp, maple, promptot, promptsrc, sotglp, zsclip  # noqa: F401
