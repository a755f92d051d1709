"""Peak memory of a code region: CUDA's allocator statistics, or the process's resident set sampled on CPU."""
import threading
import time

import torch


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


class PeakMemory:
    """``with PeakMemory(device) as pm: ...`` then ``pm.peak_mb``: the peak over the region minus the memory in use
    when it began (CUDA: ``max_memory_allocated``; CPU: resident set size sampled every ``interval`` seconds)."""

    def __init__(self, device, interval=0.002):
        self.cuda = torch.device(device).type == "cuda"
        self.interval = interval
        self.peak_mb = 0.0

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self.peak = rss_bytes()
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            peak = max(self.peak, rss_bytes())
        self.peak_mb = (peak - self.base) / 2 ** 20
        return False
