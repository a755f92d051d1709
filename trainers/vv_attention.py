"""SOT-GLP's dual-path vision trunk: CLIP's blocks plus a parallel value-value (V-V) attention stream.

SOT-GLP (``sot-glp/models/clip_local.py``: ``V2VAttention``, ``ResidualAttentionBlockVision``,
``Transformer``; the attention is CLIP Surgery's) runs, in every block ``l >= start`` and from the block's
input ``x`` (the *original* stream), with ``h = ln_1(x)`` and ``q, k, v`` the block's own projections::

    ori_l = out_proj( softmax(q k^T / sqrt(d)) v )      # CLIP's attention
    vv_l  = out_proj( softmax(v v^T / sqrt(d)) v )      # query and key replaced by the value
    x     <- x + ori_l;  x <- x + MLP(ln_2(x))          # the original stream: exactly CLIP
    x_res <- x_res + vv_l                               # the V-V stream: no MLP

The V-V stream starts at block ``start`` from that block's input ``x_s``. Released first-block aliasing
(``alias=True``): ``x_res`` is the same tensor as ``x`` when block ``start`` adds ``ori`` in place, so
``x_res = x_s + ori_s + sum_l vv_l``; without it ``x_res = x_s + sum_l vv_l`` (CLIP Surgery).

The blocks' weights are read from the open_clip modules; the modules themselves are not modified.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def dual_attention(attn: torch.nn.MultiheadAttention, h: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """CLIP attention and V-V attention of one block on ``h [R, N, W]`` (after ``ln_1``), sharing q, k, v.

    Returns ``(ori, vv)``, each ``[R, N, W]`` after the block's output projection."""
    R, N, W = h.shape
    heads = attn.num_heads
    qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)  # [R, N, 3W]
    q, k, v = qkv.view(R, N, 3, heads, W // heads).permute(2, 0, 3, 1, 4)  # each [R, H, N, d]
    ori = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(d), as CLIP and V2VAttention
    vv = F.scaled_dot_product_attention(v, v, v)
    both = torch.cat([ori, vv], dim=0).transpose(1, 2).reshape(2 * R, N, W)
    ori, vv = F.linear(both, attn.out_proj.weight, attn.out_proj.bias).split(R, dim=0)
    return ori, vv


def dual_block(block, x: torch.Tensor, x_res, alias: bool):
    """One dual-path block on batch-first ``x [R, N, W]``; ``x_res`` is ``None`` at the first V-V block."""
    ori, vv = dual_attention(block.attn, block.ln_1(x))
    x_new = x + block.ls_1(ori)
    if x_res is None:
        x_res = (x_new if alias else x) + vv
    else:
        x_res = x_res + vv
    x_new = x_new + block.ls_2(block.mlp(block.ln_2(x_new)))
    return x_new, x_res


def dual_trunk(transformer, x: torch.Tensor, start: int = 0, alias: bool = True):
    """All blocks of an open_clip vision ``transformer`` on batch-first ``x [R, N, W]`` (the ``ln_pre`` output);
    blocks ``>= start`` are dual-path. Returns ``(x, x_res)``, each ``[R, N, W]``."""
    blocks = transformer.resblocks
    if not 0 <= start < len(blocks):
        raise ValueError(f"the V-V path must start at a block in 0..{len(blocks) - 1}, got {start}")
    if not getattr(transformer, "batch_first", True):
        raise ValueError("the V-V trunk expects a batch-first open_clip transformer")
    x_res = None
    for i, block in enumerate(blocks):
        if i < start:
            x = block(x)
        else:
            x, x_res = dual_block(block, x, x_res, alias)
    return x, x_res
