"""Stop a run whose optimizer steps keep being skipped (non-finite loss or gradients)."""
from mindclip.train.errors import RunFailed


class SkipGuard:
    """Counts consecutive skipped steps; `observe(step, finite)` returns True when the run must stop.

    `limit` = `train.max_consecutive_skips` (0: never stop). A dynamic loss scale halves on every
    skipped step, so an fp16 start skips at most log2(init_loss_scale) steps in a row (16 from the
    default 65536) before its scale fits; far more in a row means the weights or the data are bad.
    """

    def __init__(self, limit):
        self.limit = limit
        self.in_a_row = 0
        self.first_skipped = None

    def observe(self, step, finite):
        if finite:
            self.in_a_row, self.first_skipped = 0, None
            return False
        self.in_a_row += 1
        if self.first_skipped is None:
            self.first_skipped = step
        return 0 < self.limit <= self.in_a_row

    def error(self, checkpoint):
        """The RunFailed to raise once `observe` said stop; `checkpoint` is where the run was saved."""
        last = self.first_skipped - 1
        weights = f"the weights of step {last}, the last update" if last else "the initial weights: no step updated"
        saved = f"; saved {checkpoint} ({weights})" if checkpoint else ""
        return RunFailed(f"{self.in_a_row} consecutive optimizer steps skipped (steps {self.first_skipped}.."
                         f"{self.first_skipped + self.in_a_row - 1}: loss or gradients not finite), "
                         f"train.max_consecutive_skips={self.limit}: stopping{saved}. Lower optim.lr, check "
                         f"the data, or resume from an earlier checkpoint")
