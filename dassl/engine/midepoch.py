"""Checkpoints between two batches, for preemption: the resumed run reproduces the uninterrupted one.

On SIGUSR1 (see :mod:`dassl.utils.signals`) the trainer finishes the current batch, writes
``<model-name>/model-preempt.pth.tar`` (the ``checkpoint`` pointer names it) and exits with status 3.
Besides the usual state it holds ``mid_epoch``: the epoch, the number of batches done and the RNG state at
the start of the epoch. A resumed run restores that RNG state, draws the epoch's batch order again (the
sampler and the data-loader workers are seeded from it), skips the batches already done by loading them
(so random augmentations stay in step), then restores the RNG state of the moment of the checkpoint.
Regular ``model.pth.tar-N`` files are never touched, so ``--load-epoch N`` keeps its meaning.
"""
from dassl.utils import get_rng_state, set_rng_state, signals
from dassl.utils.faults import crashpoint

PREEMPT_NAME = "model-preempt.pth.tar"


class MidEpochCheckpoints:
    """Mixed into the trainer: ``run_epoch`` iterates ``self.epoch_batches(loader)`` and calls
    ``self.after_batch()`` at the end of every batch."""

    _mid_epoch = None  # set by resume_model_if_exist from a preemption checkpoint

    def epoch_batches(self, loader):
        """``enumerate(loader)``, continuing after the batches a preemption checkpoint already did."""
        resume = self._mid_epoch if self._mid_epoch and self._mid_epoch["epoch"] == self.epoch else None
        self._mid_epoch = None
        if resume is not None:
            rng_now = get_rng_state()
            set_rng_state(resume["rng_epoch_start"])
        self._rng_epoch_start = get_rng_state()
        batches = iter(loader)
        start = 0
        if resume is not None:
            start = resume["batches_done"]
            for _ in range(start):
                next(batches)
            set_rng_state(rng_now)
            print(f"Resuming epoch {self.epoch + 1} after batch {start} (preemption checkpoint)")
        for i, batch in enumerate(batches, start):
            yield i, batch

    def after_batch(self):
        """Batch boundary: write the checkpoint a SIGUSR1 asked for, then stop the run."""
        crashpoint("batch boundary")
        if not signals.checkpoint_requested():
            return
        done = self.batch_idx + 1
        self.save_model(self.epoch - 1, self.output_dir, model_name=PREEMPT_NAME,
                        extra={"mid_epoch": {"epoch": self.epoch, "batches_done": done,
                                             "rng_epoch_start": self._rng_epoch_start}})
        raise signals.Preempted(f"Stopped on SIGUSR1 after epoch {self.epoch + 1} batch {done}/{self.num_batches}; "
                                "the checkpoint holds this point: rerun the same command to resume.")

    def note_resumed_checkpoint(self, checkpoint):
        """Remember the mid-epoch position of the checkpoint a run resumes from (None for a regular one)."""
        self._mid_epoch = checkpoint.get("mid_epoch")
