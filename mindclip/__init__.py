"""mindclip: lightweight CLIP pre-training, evaluation and deployment on MindSpore."""
import os as _os

# oneDNN picks a reference convolution on AVX-512 CPUs unless capped (a ResNet-18 step: 225 s -> 11 s).
# This must happen before mindspore is imported; entry points import mindclip first.
_os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
_os.environ.setdefault("GLOG_v", "3")

from mindclip.tokenizer import Tokenizer, tokenize  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
    # Model factories import mindspore; keep `import mindclip` light for data-only and tokenizer use.
    if name in ("create_model", "list_models"):
        from mindclip import models

        return getattr(models, name)
    raise AttributeError(f"module 'mindclip' has no attribute {name!r}")


__all__ = ["Tokenizer", "tokenize", "create_model", "list_models", "__version__"]
