"""Run under msrun by ut/test_ops_all_gather.py: the global contrastive loss across 2 CPU processes.

    msrun --worker_num=2 --local_worker_num=2 --master_port=P --log_dir=D --join=True \
        ut/dist_gather_check.py OUT_DIR

Every rank holds half of a fixed batch; two Dense layers (weights from a fixed seed) make image and
text features; the loss gathers them (AllGatherWithGrad); gradients are averaged over ranks with
nn.DistributedGradReducer, as in the train step. Each rank writes OUT_DIR/rank_<r>.json with, per
case, its loss and its reduced gradients; the test compares them with a NumPy full-batch reference.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the environment before mindspore loads)
import mindspore as ms  # noqa: E402
import numpy as np  # noqa: E402
from mindspore import nn  # noqa: E402
from mindspore.communication import get_group_size, get_rank, init  # noqa: E402

from mindclip.losses import ClipLoss, InstanceLoss, PyramidLoss  # noqa: E402

GLOBAL_BATCH, IMAGE_IN, TEXT_IN, EMBED, SCALE = 8, 6, 5, 4, 3.0


def fixed_data():
    """The full batch and the layer weights, identical on every rank (and in the test)."""
    rng = np.random.default_rng(7)
    return {
        "image_x": rng.normal(size=(GLOBAL_BATCH, IMAGE_IN)).astype(np.float32),
        "text_x": rng.normal(size=(GLOBAL_BATCH, TEXT_IN)).astype(np.float32),
        "image_w": (0.5 * rng.normal(size=(EMBED, IMAGE_IN))).astype(np.float32),
        "image_b": (0.1 * rng.normal(size=(EMBED,))).astype(np.float32),
        "text_w": (0.5 * rng.normal(size=(EMBED, TEXT_IN))).astype(np.float32),
        "text_b": (0.1 * rng.normal(size=(EMBED,))).astype(np.float32),
    }


class Towers(nn.Cell):
    def __init__(self, data):
        super().__init__()
        self.image = nn.Dense(IMAGE_IN, EMBED, weight_init=ms.Tensor(data["image_w"]),
                              bias_init=ms.Tensor(data["image_b"]))
        self.text = nn.Dense(TEXT_IN, EMBED, weight_init=ms.Tensor(data["text_w"]),
                             bias_init=ms.Tensor(data["text_b"]))


class ContrastiveNet(nn.Cell):
    def __init__(self, towers, loss):
        super().__init__()
        self.towers, self.loss = towers, loss

    def construct(self, image_x, text_x, progress):
        return self.loss(self.towers.image(image_x), self.towers.text(text_x), ms.Tensor(SCALE), progress)


class PyramidNet(nn.Cell):
    """Five feature sets from the two towers (inputs scaled differently) through PyramidLoss."""

    def __init__(self, towers, loss):
        super().__init__()
        self.towers, self.loss = towers, loss

    def construct(self, image_x, text_x, progress):
        image, text = self.towers.image(image_x), self.towers.text(text_x)
        total, _ = self.loss(image, 0.5 * image, image * image, text, 2.0 * text, ms.Tensor(SCALE))
        return total


class ReducedGrad(nn.Cell):
    """Loss and gradients averaged over ranks, as the data-parallel train step computes them."""

    def __init__(self, net, world):
        super().__init__()
        self.params = net.trainable_params()
        self.grad = ms.value_and_grad(net, None, self.params)
        self.reduce = nn.DistributedGradReducer(self.params, mean=True, degree=world)

    def construct(self, image_x, text_x, progress):
        loss, grads = self.grad(image_x, text_x, progress)
        return loss, self.reduce(grads)


CASES = {  # name: (net class, loss factory, progress)
    "clip_global": (ContrastiveNet, lambda: ClipLoss(local_loss=False), 0.0),
    "clip_local": (ContrastiveNet, lambda: ClipLoss(local_loss=True), 0.0),
    "lightclip_local_importance": (ContrastiveNet, lambda: InstanceLoss(local_loss=True), 0.9),
    "lightclip_global_smooth": (ContrastiveNet, lambda: InstanceLoss(local_loss=False), 0.5),
    "clip_global_no_gather_grad": (ContrastiveNet, lambda: ClipLoss(gather_with_grad=False), 0.0),
    "pyramid_local": (PyramidNet, lambda: PyramidLoss(alpha=0.2, local_loss=True), 0.0),
}


class AllCases(nn.Cell):
    """Every case in one graph: one compilation instead of one per case (compiles dominate the run)."""

    def __init__(self, data, world):
        super().__init__()
        self.towers = nn.CellList([Towers(data) for _ in CASES])
        self.steps = nn.CellList([ReducedGrad(net_class(towers, make_loss()), world)
                                  for towers, (net_class, make_loss, _) in zip(self.towers, CASES.values())])
        self.progress = [progress for _, _, progress in CASES.values()]

    def construct(self, image_x, text_x):
        results = ()
        for step, progress in zip(self.steps, self.progress):
            results = results + (step(image_x, text_x, progress),)
        return results


def main(out_dir):
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    init()
    rank, world = get_rank(), get_group_size()
    data = fixed_data()
    rows = slice(rank * GLOBAL_BATCH // world, (rank + 1) * GLOBAL_BATCH // world)
    cases = AllCases(data, world)
    outputs = cases(ms.Tensor(data["image_x"][rows]), ms.Tensor(data["text_x"][rows]))
    names = [n for n, _ in Towers(data).parameters_and_names()]  # image.weight, image.bias, ...
    results = {"rank": rank, "world": world}
    for name, (loss, grads) in zip(CASES, outputs):
        results[name] = {"loss": float(loss.asnumpy()),
                         "grads": {n: g.asnumpy().tolist() for n, g in zip(names, grads)}}
    with open(os.path.join(out_dir, f"rank_{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])
