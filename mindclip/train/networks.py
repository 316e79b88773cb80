"""Build the trained network and its objective for a run's method."""
from mindclip.models import create_model
from mindclip.tokenizer import MASK_ID
from mindclip.train.objectives import ClipObjective, LightClipObjective, PyramidClipObjective


def model_overrides(cfg):
    """The preset overrides of a run, plus the [MASK] row the text table needs when MLM is on."""
    overrides = dict(cfg.model.overrides)
    if cfg.method == "lightclip" and cfg.loss.for_method(cfg.method).mlm_weight > 0:
        overrides.setdefault("text.vocab_size", MASK_ID + 1)
    return overrides


def build_objective(cfg):
    """(clip, objective): the CLIP being trained and the objective Cell that holds it.

    `objective.model` is the network the optimizer trains (CLIP itself, or CLIP plus the
    pre-training-only cells of LightCLIP / PyramidCLIP).
    """
    loss_cfg = cfg.loss.for_method(cfg.method)
    clip = create_model(cfg.model.name, checkpoint=cfg.model.checkpoint, **model_overrides(cfg))
    if cfg.method == "clip":
        return clip, ClipObjective(clip, loss_cfg)
    if cfg.method == "lightclip":
        from mindclip.models.lightclip import LightCLIPPretrain

        net = LightCLIPPretrain(clip, token_loss=loss_cfg.token_weight > 0, mlm=loss_cfg.mlm_weight > 0,
                                mlm_attention=loss_cfg.mlm_attention)
        return clip, LightClipObjective(net, loss_cfg)
    from mindclip.models.pyramid import PyramidCLIPPretrain

    return clip, PyramidClipObjective(PyramidCLIPPretrain(clip), loss_cfg)
