"""Build the trained network and its objective for a run's method."""
from mindclip.models import create_model
from mindclip.train.objectives import ClipObjective, LightClipObjective, PyramidClipObjective

MASK_TOKEN_ID = 49408  # the [MASK] id MLM adds after CLIP's 49408 BPE ids


def model_overrides(cfg):
    """The preset overrides of a run, plus the [MASK] row the text table needs when MLM is on."""
    overrides = dict(cfg.model.overrides)
    if cfg.method == "lightclip" and cfg.loss.mlm_weight > 0:
        overrides.setdefault("text.vocab_size", MASK_TOKEN_ID + 1)
    return overrides


def build_objective(cfg):
    """(clip, objective): the CLIP being trained and the objective Cell that holds it.

    `objective.model` is the network the optimizer trains (CLIP itself, or CLIP plus the
    pre-training-only cells of LightCLIP / PyramidCLIP).
    """
    clip = create_model(cfg.model.name, checkpoint=cfg.model.checkpoint, **model_overrides(cfg))
    if cfg.method == "clip":
        return clip, ClipObjective(clip, cfg.loss)
    if cfg.method == "lightclip":
        from mindclip.models.lightclip import LightCLIPPretrain

        net = LightCLIPPretrain(clip, token_loss=cfg.loss.token_weight > 0, mlm=cfg.loss.mlm_weight > 0)
        return clip, LightClipObjective(net, cfg.loss)
    from mindclip.models.pyramid import PyramidCLIPPretrain

    return clip, PyramidClipObjective(PyramidCLIPPretrain(clip), cfg.loss)
