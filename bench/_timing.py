"""Timing helpers shared by the benchmarks: device syncs and alternating (round-robin) timing."""
import math
import time

import torch


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_together(fns, device, repeat):
    """[(result, seconds)] for each of ``fns``, run in alternation (round-robin), so that a change in the
    machine's load hits all of them alike: the minimum over the rounds. Rounds: ``repeat``; one when the
    slowest first run takes over 1 s; more, up to 15, when all take under 0.1 s (so that short timings
    are not one scheduler hiccup)."""
    best, outs = [math.inf] * len(fns), [None] * len(fns)
    rounds, r = repeat, 0
    while r < rounds:
        for k, fn in enumerate(fns):
            sync(device)
            t0 = time.perf_counter()
            outs[k] = fn()
            sync(device)
            best[k] = min(best[k], time.perf_counter() - t0)
        if r == 0:
            slowest = max(best)
            rounds = 1 if slowest > 1.0 else (min(15, max(repeat, int(0.3 / max(slowest, 1e-6))))
                                              if slowest < 0.1 else repeat)
        r += 1
    return list(zip(outs, best))


def timed(fn, device, repeat):
    """(result, seconds) of ``fn`` alone (see :func:`timed_together`)."""
    return timed_together([fn], device, repeat)[0]
