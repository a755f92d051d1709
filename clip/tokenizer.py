"""CLIP's BPE tokenizer (open_clip's copy of OpenAI's vocabulary) with OpenAI's ``tokenize`` semantics."""
from typing import List, Union

import torch
from open_clip.tokenizer import SimpleTokenizer

__all__ = ["SimpleTokenizer", "tokenize", "_tokenizer"]

_tokenizer = SimpleTokenizer()


def tokenize(texts: Union[str, List[str]], context_length: int = 77, truncate: bool = False) -> torch.LongTensor:
    """``[N, context_length]`` int64 token ids: SOT, BPE tokens, EOT, zero padding.

    As OpenAI's ``clip.tokenize``: a text longer than the context raises unless ``truncate=True``
    (then the last kept token is EOT).
    """
    if isinstance(texts, str):
        texts = [texts]
    sot = _tokenizer.encoder["<start_of_text>"]
    eot = _tokenizer.encoder["<end_of_text>"]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        tokens = [sot] + _tokenizer.encode(text) + [eot]
        if len(tokens) > context_length:
            if not truncate:
                raise RuntimeError(f"Input {text!r} is too long for context length {context_length}")
            tokens = tokens[:context_length]
            tokens[-1] = eot
        result[i, : len(tokens)] = torch.tensor(tokens)
    return result
