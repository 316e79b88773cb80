"""All-gather along the batch axis with a backward that runs on every backend (CPU included).

`ops.AllGather`'s built-in backward is a ReduceScatter, which MindSpore has no CPU kernel for
("Unsupported op [ReduceScatter] on CPU"). `AllGatherWithGrad` computes the same gradient as an
AllReduce (SUM) of the incoming gradient followed by this rank's slice, which works on CPU
(msrun + mccl), GPU and Ascend.
"""
from mindspore import nn, ops
from mindspore.communication import GlobalComm, get_group_size, get_rank


def world_info(rank=None, world_size=None):
    """(rank, world_size) of this process: the given values, else the initialised world, else (0, 1)."""
    if world_size is None:
        world_size = get_group_size() if GlobalComm.INITED else 1
    if rank is None:
        rank = get_rank() if GlobalComm.INITED else 0
    if not 0 <= rank < world_size:
        raise ValueError(f"world_info: rank {rank} is outside a world of {world_size} processes")
    return rank, world_size


class AllGatherWithGrad(nn.Cell):
    """Concatenate every rank's `x` along axis 0 (rank order); the gradient flows back to each rank.

    Backward: the incoming gradient (W*B, ...) is summed over ranks (AllReduce) and this rank's rows
    [rank*B, (rank+1)*B) are returned, i.e. a ReduceScatter(SUM). Identity when the world size is 1.

    Args:
        rank, world_size: default to the initialised communication world, or (0, 1) without one.
        group: communication group name.
    """

    def __init__(self, rank=None, world_size=None, group=GlobalComm.WORLD_COMM_GROUP):
        super().__init__()
        self.rank, self.world_size = world_info(rank, world_size)
        if self.world_size > 1:
            self.all_gather = ops.AllGather(group)
            self.all_reduce = ops.AllReduce(ops.ReduceOp.SUM, group)

    def construct(self, x):
        if self.world_size == 1:
            return x
        return self.all_gather(x)  # (W*B, ...)

    def bprop(self, x, out, dout):
        if self.world_size == 1:
            return (dout,)
        batch = x.shape[0]
        summed = self.all_reduce(dout)  # (W*B, ...), sum over ranks
        return (summed[self.rank * batch:(self.rank + 1) * batch],)
