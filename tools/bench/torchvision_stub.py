"""Import open_clip and timm where torchvision is missing or broken (`torchvision::nms does not exist`).

Nothing we run uses torchvision: open_clip's `utils` and timm's norm layers import `FrozenBatchNorm2d`
(for freezing), timm's `data` builds transforms at import time. When the real import fails, every
`torchvision[.*]` import gets a stub module whose attributes are inert placeholder classes
(`FrozenBatchNorm2d` an `nn.Module`), and open_clip's submodules load without its package `__init__`.
Used by tools/bench/torch_reference.py and the ut/data golden generators.
"""
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types


class _Placeholder(type):
    def __getattr__(cls, name):  # InterpolationMode.BICUBIC and the like
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{cls.__qualname__}.{name}", (), {})


class _StubModule(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        import torch

        base = (torch.nn.Module,) if name == "FrozenBatchNorm2d" else ()  # an isinstance() target
        value = (type if base else _Placeholder)(name, base, {})
        setattr(self, name, value)
        return value


class _TorchvisionFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] == "torchvision":
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec):
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module):
        pass


def import_open_clip():
    """open_clip with `tokenizer`, `transformer`, `model`, `loss`, `__version__`, `torchvision_stub` (bool)."""
    try:
        import open_clip

        open_clip.torchvision_stub = False
        return open_clip
    except (ImportError, RuntimeError):
        for name in [n for n in sys.modules if n.split(".")[0] in ("torchvision", "open_clip", "timm")]:
            del sys.modules[name]
    sys.meta_path.insert(0, _TorchvisionFinder())
    package = types.ModuleType("open_clip")
    package.__path__ = list(importlib.util.find_spec("open_clip").submodule_search_locations)
    sys.modules["open_clip"] = package
    for name in ("tokenizer", "transformer", "model", "loss", "version"):
        importlib.import_module(f"open_clip.{name}")  # sets package.<name>
    package.__version__, package.torchvision_stub = package.version.__version__, True
    return package
