"""Training: run config, objectives, the one train step, checkpoints and the loop."""
from mindclip.train.config import RunConfig, load_run_config
from mindclip.train.build import build_train_step
from mindclip.train.errors import RunError, RunFailed
from mindclip.train.trainer import Trainer

__all__ = ["RunConfig", "load_run_config", "Trainer", "build_train_step", "RunError", "RunFailed"]
