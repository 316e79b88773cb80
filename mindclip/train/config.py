"""The run configuration: one YAML recipe in `ascend_configs/` = one `RunConfig`.

Device, mode and card count are overrides (`--set train.device_target=Ascend`; the card count
comes from `msrun`), never copies of a recipe.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

from mindclip.config import load_config
from mindclip.data.columns import METHODS
from mindclip.data.pipeline import DataConfig

ACCUMULATIONS = ("features", "gradients")
AMP_DTYPES = ("float16", "bfloat16")
RECOMPUTE_CHOICES = ("none", "image", "text", "all")


@dataclasses.dataclass
class ModelSection:
    """Which preset to build and how to change it."""

    name: str = "tiny_mobilenetv2"  # a preset from mindclip.list_models()
    overrides: Dict[str, Any] = dataclasses.field(default_factory=dict)  # dotted preset keys
    checkpoint: Optional[str] = None  # initial weights (a model or training checkpoint)


# What `method` implies when a recipe leaves a loss key out (the papers' values, DESIGN.md)
METHOD_LOSS_DEFAULTS = {
    "clip": {"inst_weight": 1.0, "token_weight": 0.0, "mlm_weight": 0.0, "r1": 1.0, "r2": 1.0},
    "lightclip": {"inst_weight": 0.8, "token_weight": 0.1, "mlm_weight": 0.1, "r1": 0.33, "r2": 0.66},
    "pyramidclip": {"inst_weight": 1.0, "token_weight": 0.0, "mlm_weight": 0.0, "r1": 1.0, "r2": 1.0},
}


@dataclasses.dataclass
class LossSection:
    """Weights and hyper-parameters of every objective (DESIGN.md).

    A key left out (None) takes the run method's paper value (METHOD_LOSS_DEFAULTS): `method:
    lightclip` alone trains the full LightCLIP objective. The saved config holds the values used.
    """

    inst_weight: Optional[float] = None  # alpha: instance contrastive loss
    token_weight: Optional[float] = None  # beta: token-level alignment (LightCLIP)
    mlm_weight: Optional[float] = None  # gamma: masked language modelling with image fusion (LightCLIP)
    mlm_attention: str = "causal"  # masked-text pass: causal (left context) | bidirectional (BERT-style)
    r1: Optional[float] = None  # progress where one-hot labels turn into label smoothing (1.0 = never)
    r2: Optional[float] = None  # progress where smoothing turns into importance-aware targets
    delta: float = 0.2  # mass moved off the positive by the softened labels
    pyramid_alpha: float = 0.2  # PyramidCLIP label smoothing
    pyramid_weights: Tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)  # L_GS, L_LT, L_RS, L_RT (eq. 6)
    local_loss: bool = False  # logits of local rows against the global batch only
    gather_with_grad: bool = True  # all-gather features with gradient across ranks

    def for_method(self, method):
        """A copy with every key left out set to `method`'s default."""
        unset = {k: v for k, v in METHOD_LOSS_DEFAULTS[method].items() if getattr(self, k) is None}
        return dataclasses.replace(self, **unset)

    def validate(self):
        r1, r2 = self.r1, self.r2
        if r1 is not None and r2 is not None and not 0.0 <= r1 <= r2 <= 1.0:
            raise ValueError(f"r1/r2 must satisfy 0 <= r1 <= r2 <= 1, got {r1}, {r2}")
        for name in ("r1", "r2"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 <= self.delta < 1.0:
            raise ValueError(f"delta must be in [0, 1), got {self.delta}")
        if self.mlm_attention not in ("causal", "bidirectional"):
            raise ValueError(f"mlm_attention must be causal or bidirectional, got {self.mlm_attention!r}")
        for name in ("inst_weight", "token_weight", "mlm_weight"):
            if (getattr(self, name) or 0.0) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0.0 <= self.pyramid_alpha < 1.0:
            raise ValueError(f"pyramid_alpha must be in [0, 1), got {self.pyramid_alpha}")
        if min(self.pyramid_weights) < 0 or sum(self.pyramid_weights) <= 0:
            raise ValueError(f"pyramid_weights must be >= 0 with a positive sum, got {self.pyramid_weights}")


@dataclasses.dataclass
class OptimSection:
    """AdamW with linear warm-up then cosine decay, all learning rates precomputed per step."""

    lr: float = 5e-4
    min_lr: float = 0.0
    weight_decay: float = 0.1  # not applied to biases, norms, 1-D tensors and logit_scale
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    warmup_fraction: float = 0.05  # of all optimizer steps
    clip_grad_norm: float = 0.0  # 0 disables clipping
    accumulation_steps: int = 1  # K micro-batches per optimizer step (global batch = ranks x K x batch_size)
    accumulation: str = "features"  # features: exact big-batch loss (GradCache) | gradients: mean of K small-batch losses

    def validate(self):
        if self.lr <= 0:
            raise ValueError("lr must be > 0")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError("warmup_fraction must be in [0, 1)")
        if self.accumulation_steps < 1:
            raise ValueError("accumulation_steps must be >= 1")
        if self.accumulation not in ACCUMULATIONS:
            raise ValueError(f"accumulation must be one of {', '.join(ACCUMULATIONS)}, got {self.accumulation!r}")


@dataclasses.dataclass
class TrainSection:
    """Run length, precision, output and bookkeeping."""

    epochs: int = 1
    max_steps: int = 0  # optimizer steps; 0 = derive from epochs
    output_dir: str = "runs/default"
    seed: int = 0
    device_target: str = "CPU"  # CPU | GPU | Ascend
    mode: str = "graph"  # graph | pynative (debugging only)
    amp_level: str = "O0"  # O0 fp32 | O1..O3 mixed precision in amp_dtype (LayerNorm, softmax, losses stay fp32)
    amp_dtype: str = "float16"  # float16 | bfloat16 (Ascend 910B, recent GPUs; not the CPU backend)
    loss_scale: str = "auto"  # auto (dynamic for float16, none otherwise) | dynamic | none | a number as text
    recompute: str = "none"  # none | image | text | all: recompute the towers' blocks in the backward
    init_loss_scale: float = 65536.0
    log_every: int = 1
    save_every: int = 0  # optimizer steps between checkpoints; 0 = only the final one
    keep_checkpoints: int = 3
    max_consecutive_skips: int = 50  # stop the run (exit 1) after this many skipped steps in a row; 0 = never
    eval_every: int = 0  # optimizer steps between held-out evaluations; 0 = never during training
    eval_data: str = ""  # demo/val folder or retrieval CSV used for the periodic evaluation

    def validate(self):
        if self.device_target not in ("CPU", "GPU", "Ascend"):
            raise ValueError(f"device_target must be CPU, GPU or Ascend, got {self.device_target!r}")
        if self.mode not in ("graph", "pynative"):
            raise ValueError(f"mode must be graph or pynative, got {self.mode!r}")
        if self.amp_level not in ("O0", "O1", "O2", "O3"):
            raise ValueError(f"amp_level must be O0..O3, got {self.amp_level!r}")
        if self.amp_dtype not in AMP_DTYPES:
            raise ValueError(f"amp_dtype must be one of {', '.join(AMP_DTYPES)}, got {self.amp_dtype!r}")
        if self.amp_level != "O0" and self.amp_dtype == "bfloat16" and self.device_target == "CPU":
            raise ValueError("amp_dtype=bfloat16 cannot run on device_target=CPU (MindSpore's CPU backend has no "
                             "bfloat16 Conv2D, BatchNorm, MatMul or Softmax kernels); use float16, or amp_level=O0")
        if self.recompute not in RECOMPUTE_CHOICES:
            raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE_CHOICES)}, got {self.recompute!r}")
        if self.loss_scale not in ("auto", "dynamic", "none"):
            try:
                float(self.loss_scale)
            except ValueError:
                raise ValueError(f"loss_scale must be dynamic, none or a number, got {self.loss_scale!r}")
        if self.max_consecutive_skips < 0:
            raise ValueError(f"max_consecutive_skips must be >= 0 (0 = no limit), got {self.max_consecutive_skips}")
        if self.epochs < 1 and self.max_steps < 1:
            raise ValueError("epochs or max_steps must be >= 1")


@dataclasses.dataclass
class RunConfig:
    """A whole training run."""

    method: str = "clip"  # clip | lightclip | pyramidclip
    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    loss: LossSection = dataclasses.field(default_factory=LossSection)
    optim: OptimSection = dataclasses.field(default_factory=OptimSection)
    train: TrainSection = dataclasses.field(default_factory=TrainSection)

    def validate(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        # the run's method decides the batch columns; data.method is set from it, never on its own
        if self.data.method not in (DataConfig.method, self.method):
            raise ValueError(f"data.method={self.data.method!r} contradicts method={self.method!r}: "
                             f"set only the top-level method")
        self.data = dataclasses.replace(self.data, method=self.method)
        self.loss = self.loss.for_method(self.method)
        self.loss.validate()


def load_run_config(path, overrides=()):
    """Read a recipe, apply `key=value` overrides, refuse unknown keys naming the key and file."""
    return load_config(RunConfig, path, overrides)
