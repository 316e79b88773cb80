"""mindclip: lightweight CLIP pre-training, evaluation and deployment on MindSpore."""
import os as _os

# oneDNN picks a reference convolution on AVX-512 CPUs unless capped (a ResNet-18 step: 225 s -> 11 s).
# This must happen before mindspore is imported; entry points import mindclip first.
_os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
_os.environ.setdefault("GLOG_v", "3")

import atexit as _atexit  # noqa: E402
import sys as _sys  # noqa: E402


def _quiet_cell_teardown(previous_hook):
    """At interpreter exit MindSpore's `Cell.__del__` runs after its module globals are gone and
    raises AttributeError ('NoneType' object has no attribute ...), hundreds of harmless lines
    (MINDSPORE_FACTS.md) that bury a program's last output. Drop exactly those; pass on the rest."""
    def hook(unraisable):
        where = getattr(unraisable.object, "__qualname__", "")
        if isinstance(unraisable.exc_value, AttributeError) and where == "Cell.__del__":
            return
        previous_hook(unraisable)
    return hook


def _quiet_at_exit():
    """Wrap whatever hook is current when the interpreter exits: a test runner (pytest) installs its
    own hook and restores the original before exit, which drops the one set at import."""
    _sys.unraisablehook = _quiet_cell_teardown(_sys.unraisablehook)


_sys.unraisablehook = _quiet_cell_teardown(_sys.unraisablehook)
_atexit.register(_quiet_at_exit)  # atexit runs before the module teardown that triggers the noise

from mindclip.tokenizer import Tokenizer, tokenize  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):
    # Model factories import mindspore; keep `import mindclip` light for data-only and tokenizer use.
    if name in ("create_model", "list_models"):
        from mindclip import models

        return getattr(models, name)
    raise AttributeError(f"module 'mindclip' has no attribute {name!r}")


__all__ = ["Tokenizer", "tokenize", "create_model", "list_models", "__version__"]
