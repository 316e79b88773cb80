"""`build_train_step(cfg, network)`: the one train step of a run, for the trainer, the benchmarks and
the tests alike. It applies the run's precision and recompute settings to the network, builds
AdamW, the gradient reducer and the loss (plain, feature-accumulated or gradient-accumulated), and
returns a `TrainStep`.
"""
import mindspore as ms
from mindspore import nn

from mindclip.models.recompute import apply_recompute
from mindclip.ops.all_gather import world_info
from mindclip.train.batch_losses import BatchLoss, FeaturePass, SplicedLoss
from mindclip.train.optim import AdamW, decays_weight
from mindclip.train.step import StepCell, TrainStep

AMP_DTYPES = {"float16": ms.float16, "bfloat16": ms.bfloat16}


def build_optimizer(optim_cfg, net):
    """AdamW over the trainable weights of `net`, weight decay by tensor rank."""
    named = [(name, p) for name, p in net.parameters_and_names() if p.requires_grad]
    return AdamW([p for _, p in named], [decays_weight(n, p) for n, p in named],
                 weight_decay=optim_cfg.weight_decay, beta1=optim_cfg.beta1, beta2=optim_cfg.beta2,
                 eps=optim_cfg.eps)


def resolved_loss_scale(train_cfg):
    """`train.loss_scale` with "auto" resolved: dynamic for float16 mixed precision, else none."""
    if train_cfg.loss_scale != "auto":
        return train_cfg.loss_scale
    fp16 = train_cfg.amp_level != "O0" and train_cfg.amp_dtype == "float16"
    return "dynamic" if fp16 else "none"


def apply_precision(net, train_cfg):
    """Mixed precision of `train.amp_level` in `train.amp_dtype` (LayerNorm, softmax, losses stay fp32)."""
    if train_cfg.amp_level != "O0":
        ms.amp.auto_mixed_precision(net, train_cfg.amp_level, dtype=AMP_DTYPES[train_cfg.amp_dtype])


def build_train_step(cfg, network, rank=None, world_size=None, optimizer=None):
    """The train step of the run `cfg` (a RunConfig) over `network` (an objective from `build_objective`).

    Applies `train.amp_level`/`amp_dtype` and `train.recompute` to `network.model` and puts it in
    training mode. `optim.accumulation_steps` K > 1 accumulates micro-batches by `optim.accumulation`:
    "features" (exact, the default) or "gradients". rank / world_size default to the initialised
    communication world. `optimizer` replaces AdamW (e.g. to read the gradients in a test).

    Returns a `TrainStep`: `step(lr, progress, micro_batches) -> StepResult`.
    """
    rank, world = world_info(rank, world_size)
    net = network.model
    apply_precision(net, cfg.train)
    which = cfg.train.recompute
    apply_recompute(net, network.clip, image=which in ("image", "all"), text=which in ("text", "all"))
    net.set_train(True)
    optimizer = optimizer if optimizer is not None else build_optimizer(cfg.optim, net)
    steps = cfg.optim.accumulation_steps
    by_features = steps > 1 and cfg.optim.accumulation == "features"
    reducer = None
    if world > 1:  # features: each rank differentiates its own rows of one loss, so the gradients add up
        reducer = nn.DistributedGradReducer(optimizer.params, mean=not by_features, degree=world)
    feature_pass = None
    if by_features:
        loss_cell = SplicedLoss(network, network.feature_count, world)
        feature_pass = FeaturePass(network, world)
    else:
        loss_cell = BatchLoss(network, cfg.loss.gather_with_grad, rank, world)
    accumulate = None if steps == 1 else ("sum" if by_features else "mean")
    cell = StepCell(loss_cell, optimizer, network.clip.logit_scale, loss_scale=resolved_loss_scale(cfg.train),
                    init_loss_scale=cfg.train.init_loss_scale, grad_reducer=reducer,
                    clip_grad_norm=cfg.optim.clip_grad_norm, accumulate=accumulate, accumulation_steps=steps)
    return TrainStep(cell, network, steps, feature_pass, rank, world)
