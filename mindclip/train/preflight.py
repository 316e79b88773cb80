"""Checks made before anything is built: each refusal is one RunError naming the key, file or flag.

Cheap on purpose (file tests, preset YAML, a shard glob): a run that cannot work stops here,
before runtime set-up, model construction or a graph compile. Checkpoint contents (checksum,
finite values) are checked where they are read (mindclip/models/weights.py, train/checkpoint.py).
"""
import os

from mindclip.config import ConfigError
from mindclip.train.errors import RunError


def check_run(cfg, resume=None):
    """Refuse a run config (and `--resume` value) that would fail later; return nothing."""
    check_device(cfg.train.device_target)
    check_output_dir(cfg.train.output_dir)
    check_model(cfg)
    check_data(cfg)
    check_resume_flag(resume)


def check_device(target):
    from mindspore import hal

    if target != "CPU" and not hal.is_available(target):
        raise RunError(f"train.device_target={target}: MindSpore cannot use {target} here "
                       f"(mindspore.hal.is_available({target!r}) is False: a build without {target} support, "
                       f"or its driver stack is missing); set train.device_target=CPU or install it")


def check_output_dir(path):
    if not path:
        raise RunError("train.output_dir is empty")
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "is a file" if existing == os.path.abspath(path) else f"lies under a file ({existing})"
        raise RunError(f"train.output_dir {path} {what}, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"train.output_dir {path}: no permission to write in {existing}")


def check_model(cfg):
    from mindclip.models.clip_image_towers import CLIP_TOWER_TYPES
    from mindclip.models.registry import get_model_config, list_models, preset_path
    from mindclip.train.networks import model_overrides

    try:
        preset_path(cfg.model.name)
        config = get_model_config(cfg.model.name, **model_overrides(cfg))
    except ConfigError as e:
        raise RunError(f"model.overrides: {e}") from None
    except ValueError as e:
        raise RunError(f"model.name: {e}") from None
    # method -> (needs a CLIP tower, what it needs): PyramidCLIP's ROI path runs CLIP's own towers
    # (ViT, ModifiedResNet); LightCLIP's token alignment and fusion read a mindcv tower's four stage maps
    needs = {"pyramidclip": (True, f"a CLIP image tower (image.backbone {' or '.join(CLIP_TOWER_TYPES)})"),
             "lightclip": (False, "a mindcv image tower with four stage maps (ResNet-18, MobileNet-V2, Swin)")}
    if cfg.method in needs:
        wants_clip_tower, what = needs[cfg.method]
        if (config.image.backbone in CLIP_TOWER_TYPES) != wants_clip_tower:
            fitting = [name for name in list_models()
                       if (get_model_config(name).image.backbone in CLIP_TOWER_TYPES) == wants_clip_tower]
            raise RunError(f"method={cfg.method} needs {what}, but model.name={cfg.model.name} has "
                           f"{config.image.backbone}; presets that fit: {', '.join(fitting)}")
    if cfg.model.checkpoint is not None and not os.path.isfile(cfg.model.checkpoint):
        raise RunError(f"model.checkpoint: file not found: {cfg.model.checkpoint}")


def check_data(cfg):
    from mindclip.data.pipeline import list_shards

    try:
        list_shards(cfg.data.train_shards)
    except FileNotFoundError as e:
        raise RunError(f"data.train_shards: {e}") from None
    if cfg.train.eval_every and not cfg.train.eval_data:
        raise RunError(f"train.eval_every={cfg.train.eval_every} needs train.eval_data (a demo folder, "
                       f"Karpathy JSON or retrieval CSV); set it, or train.eval_every=0")
    if cfg.train.eval_every and not os.path.exists(cfg.train.eval_data):
        raise RunError(f"train.eval_data: not found: {cfg.train.eval_data}")


def check_resume_flag(resume):
    if resume is None or resume == "auto":
        return
    if os.path.isdir(resume):
        raise RunError(f"--resume {resume} is a directory: pass a checkpoint file, or --resume auto with "
                       f"train.output_dir={resume}")
    if not os.path.isfile(resume):
        raise RunError(f"--resume: checkpoint not found: {resume}")
