"""CLIP loading and tokenization with OpenAI ``clip``'s interface, built on open_clip_torch."""
from .clip import (  # noqa: F401
    OPENAI_FILES, WEIGHTS_DIR_ENV, WeightsNotFoundError, available_models, build_model, load, load_clip_to_cpu,
    resolve_weights, tiny_config,
)
from .model import CLIP, as_clip  # noqa: F401
from .tokenizer import tokenize  # noqa: F401
