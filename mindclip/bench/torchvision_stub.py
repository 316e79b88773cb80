"""Import open_clip and timm where torchvision is missing or broken (`torchvision::nms does not exist`).

Nothing we run uses torchvision: open_clip's `utils` and timm's norm layers import `FrozenBatchNorm2d`
(for isinstance checks when freezing), timm's `data` builds transforms at import. When the real import
fails, every `torchvision[.*]` import gets a module whose public attributes are inert placeholder
classes, and open_clip's submodules load without its package `__init__`. PyTorch only; used by
torch_reference.py and the ut/data golden generators.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types


def _placeholder(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Placeholder(name, (), {})


class _Placeholder(type):
    """A stub class: its public attributes are stub classes too (`InterpolationMode.BICUBIC`)."""

    def __getattr__(cls, name):
        return _placeholder(name)


class _TorchvisionStub(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] == "torchvision":
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def exec_module(self, module):
        module.__getattr__ = _placeholder  # PEP 562: any attribute, e.g. FrozenBatchNorm2d


def import_open_clip():
    """open_clip with `tokenizer`, `transformer`, `model`, `loss`, `__version__`, `torchvision_stub` (bool)."""
    try:
        import open_clip

        open_clip.torchvision_stub = False
        return open_clip
    except (ImportError, RuntimeError):
        for name in [n for n in sys.modules if n.split(".")[0] in ("torchvision", "open_clip", "timm")]:
            del sys.modules[name]
    sys.meta_path.insert(0, _TorchvisionStub())
    package = types.ModuleType("open_clip")
    package.__path__ = list(importlib.util.find_spec("open_clip").submodule_search_locations)
    sys.modules["open_clip"] = package
    for name in ("tokenizer", "transformer", "model", "loss", "version"):
        importlib.import_module(f"open_clip.{name}")  # sets package.<name>
    package.__version__, package.torchvision_stub = package.version.__version__, True
    return package
