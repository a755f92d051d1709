"""Alias module so ``from clip.simple_tokenizer import SimpleTokenizer as _Tokenizer`` keeps working."""
from open_clip.tokenizer import SimpleTokenizer  # noqa: F401
