"""The losses a train step differentiates, built from an objective's pieces (objectives.py).

- `BatchLoss`: one batch per rank. Contrastive parts over the global batch (features all-gathered,
  with gradient), per-sample parts averaged over every sample of every rank.
- `FeaturePass` and `SplicedLoss`: exact contrastive accumulation (open_clip's `--accum-freq`,
  GradCache). An optimizer step over K micro-batches per rank first runs `FeaturePass` on each
  micro-batch (features of the whole global batch, no gradient), then `SplicedLoss` on each one
  again with gradient: its fresh features replace its cached rows in the global set, so every
  contrastive part and its soft targets see all W*K*B pairs. Summing the K gradients of every rank
  gives the gradient of one step over the whole batch: each pass differentiates the full loss through
  its own rows only, and `logit_scale`, which every pass sees directly, takes 1/(K*W) of its gradient
  per pass. Per-sample parts are divided by their global counts, so their sum over the passes is the
  whole batch's mean.

Shapes: B samples per micro-batch and rank, W ranks, N = W*K*B rows in the global batch, E widths.
"""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindclip.losses.contrastive import GatherFeatures


def weighted_total(weights, parts):
    """sum(weights[i] * parts[i]) for a tuple of scalar Tensors and Python float weights."""
    total = parts[0] * weights[0]
    for i in range(1, len(parts)):
        total = total + parts[i] * weights[i]
    return total


class _RankSum(nn.Cell):
    """Sum of a detached tensor over ranks (identity on one process); never differentiated."""

    def __init__(self, world_size):
        super().__init__()
        self.world_size = world_size
        if world_size > 1:
            self.all_reduce = ops.AllReduce(ops.ReduceOp.SUM)

    def construct(self, x):
        x = ops.stop_gradient(x)
        if self.world_size > 1:
            x = ops.stop_gradient(self.all_reduce(x))
        return x


class BatchLoss(nn.Cell):
    """`(progress, *batch) -> (loss, parts (P,))` for this rank's batch.

    The loss is differentiated; the gradient reducer then takes the mean over ranks. `parts` are
    the values over the global batch (per-sample parts summed over ranks first), for the log.
    """

    def __init__(self, objective, gather_with_grad=True, rank=None, world_size=None):
        super().__init__()
        self.objective = objective
        self.gather = GatherFeatures(gather_with_grad, rank, world_size)
        self.rank, self.world_size = self.gather.rank, self.gather.world_size
        self.rank_sum = _RankSum(self.world_size)
        self.weights = objective.part_weights

    def construct(self, progress, *batch):
        features, logit_scale_exp, sums, counts = self.objective.forward(*batch)  # (B, E_i) each
        all_features = self.gather(*features)  # (W*B, E_i) each
        offset = self.rank * features[0].shape[0] if self.objective.local_loss else 0
        contrastive = self.objective.contrastive(features, all_features, logit_scale_exp, progress, offset)
        local, reported = self._global_means(sums, counts)
        loss = weighted_total(self.weights, contrastive + local)
        return loss, ops.stack(contrastive + reported)

    def _global_means(self, sums, counts):
        """Per-sample parts as this rank's share of the global mean (x W: the reducer takes the mean
        over ranks), and the global means themselves for the log."""
        if not sums:
            return (), ()
        totals = ops.maximum(self.rank_sum(ops.stack(counts)), 1.0)  # (P_l,) samples over all ranks
        local_sums = ops.stack(sums)  # (P_l,)
        shares = local_sums * (self.world_size / totals)
        reported = self.rank_sum(local_sums) / totals
        local, report = (), ()
        for i in range(len(sums)):
            local = local + (shares[i],)
            report = report + (reported[i],)
        return local, report


class FeaturePass(nn.Cell):
    """`(*batch) -> (features, counts)`: the first pass of feature accumulation, forward only.

    features: the objective's contrastive features gathered over ranks, (W*B, E_i) each, float32.
    counts: (P_l,) the per-sample parts' counts summed over ranks (a (1,) zero when there are none).
    """

    def __init__(self, objective, world_size=1):
        super().__init__()
        self.objective = objective
        self.gather = GatherFeatures(world_size=world_size)  # forward only: no gradient flows in this pass
        self.rank_sum = _RankSum(world_size)

    def construct(self, *batch):
        features, _, counts = self.objective.features(*batch)
        gathered = self.gather(*features)
        out = ()
        for f in gathered:
            out = out + (ops.stop_gradient(f).astype(ms.float32),)
        if not counts:
            return out, ops.zeros((1,), ms.float32)
        return out, self.rank_sum(ops.stack(counts))


class SplicedLoss(nn.Cell):
    """`(progress, index, scale_share, report_contrastive, *cache, *totals, *batch) -> (loss, parts)`.

    The second pass of feature accumulation for one micro-batch.

    Inputs:
        index: (N,) int32 rows of concat(cache, fresh features) that make the global set: the
            micro-batch's own rows point at its fresh features (N + i).
        scale_share: 1 / (K * W): the share of logit_scale's direct gradient this pass carries.
        report_contrastive: 1.0 on the pass that reports the contrastive parts, else 0.0, so that
            `parts` summed over the K passes are the whole batch's parts.
        cache: the objective's features of the global batch from `FeaturePass`, (N, E_i) each.
        totals: the per-sample parts' global counts, each a () float >= 1.
    """

    def __init__(self, objective, n_features, world_size=1):
        super().__init__()
        self.objective = objective
        self.n_features = n_features
        self.n_local = objective.local_part_count
        self.weights = objective.part_weights
        self.rank_sum = _RankSum(world_size)

    def construct(self, progress, index, scale_share, report_contrastive, *inputs):
        cache = inputs[:self.n_features]
        totals = inputs[self.n_features:self.n_features + self.n_local]
        batch = inputs[self.n_features + self.n_local:]
        features, logit_scale_exp, sums, _ = self.objective.forward(*batch)  # (B, E_i) each
        spliced = ()
        for i in range(self.n_features):
            rows = ops.concat((cache[i], features[i].astype(ms.float32)), axis=0)  # (N + B, E_i)
            spliced = spliced + (ops.gather(rows, index, 0),)  # (N, E_i)
        fixed = ops.stop_gradient(logit_scale_exp)
        logit_scale_exp = fixed + (logit_scale_exp - fixed) * scale_share  # same value, 1/(K*W) of its gradient
        contrastive = self.objective.contrastive(spliced, spliced, logit_scale_exp, progress, 0)
        local = ()
        for i in range(self.n_local):
            local = local + (sums[i] / totals[i],)
        loss = weighted_total(self.weights, contrastive + local)
        return loss, ops.stack(self._reported(contrastive, sums, totals, report_contrastive))

    def _reported(self, contrastive, sums, totals, report_contrastive):
        """The parts for the log: additive over the K passes (and summed over ranks)."""
        reported = ()
        for part in contrastive:
            reported = reported + (part * report_contrastive,)
        if self.n_local:
            summed = self.rank_sum(ops.stack(sums))  # (P_l,)
            for i in range(self.n_local):
                reported = reported + (summed[i] / totals[i],)
        return reported


def splice_index(total_rows, start, batch):
    """(N,) int32: identity except rows [start, start + batch), which point at N + 0 .. N + batch - 1."""
    index = np.arange(total_rows, dtype=np.int32)
    index[start:start + batch] = total_rows + np.arange(batch, dtype=np.int32)
    return index
