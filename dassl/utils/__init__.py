from .tools import *  # noqa: F401,F403
from .tools import format_elapsed, timestamp  # noqa: F401
from .logger import Logger, setup_logger  # noqa: F401
from .meters import AverageMeter, MetricMeter  # noqa: F401
from .registry import Registry  # noqa: F401
from .torchtools import (  # noqa: F401
    CheckpointWriteError, atomic_torch_save, count_num_param, find_resume_checkpoint, get_rng_state,
    remove_stale_temp_files, set_rng_state, load_checkpoint, load_pretrained_weights,
    resume_from_checkpoint, save_checkpoint,
)
