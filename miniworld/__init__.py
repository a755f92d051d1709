"""Mini-world: a procedural image world, small enough for a CPU, where base-to-novel prompt learning is real.

* :mod:`miniworld.world`: the vocabulary (shapes, colours, patterns, sizes, styles), the downstream classes and
  their base / new halves, a vectorised renderer and the pretraining captions;
* :mod:`miniworld.write`: renders the world into CoOp's layout (``images/`` + ``split_zhou_MiniWorld.json``);
* ``scripts/miniworld/pretrain_clip.py`` pretrains the ``miniworld`` CLIP backbone (``clip/weights/``).
"""
