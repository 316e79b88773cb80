"""Unpickle CIFAR-10/100 python batches without letting a crafted file run code.

`pickle.load` calls whatever function a file names, so a file dropped under `--root` could run a
shell command. The CIFAR batches (pickled by Python 2's cPickle, protocol 2) hold only a dict of
byte strings, lists of ints or byte strings, and uint8 numpy arrays; the only globals they name are
numpy's array rebuilders: ``numpy.core.multiarray._reconstruct``, ``numpy.ndarray`` and
``numpy.dtype``. `CifarUnpickler` admits exactly those, plus what the same data names when
re-pickled by Python 3 (``numpy._core`` spellings, protocol 5's ``_frombuffer``, and protocol 2's
``_codecs.encode(text, "latin1")`` for bytes), and refuses every other global before calling it.
"""
import pickle

import numpy as np

_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
}


class CifarPickleError(ValueError):
    """A file that is not a CIFAR python batch, or names something a CIFAR batch never holds."""


def _plain_dtype(*args):
    """`numpy.dtype` as pickles call it, refusing object dtypes (CIFAR arrays are uint8)."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"an object dtype ({dtype}), which a CIFAR batch never holds")
    return dtype


def _latin1_bytes(text, encoding):
    """`_codecs.encode` as Python 3's protocol-2 pickles use it for bytes, and nothing else."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class CifarUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals of the module docstring."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        if (module, name) == ("numpy", "dtype"):
            return _plain_dtype
        if (module, name) == ("_codecs", "encode"):
            return _latin1_bytes
        raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR batch never holds")


def load_cifar_batch(path):
    """The dict of one CIFAR python batch (bytes keys), read with `CifarUnpickler`.

    Raises `CifarPickleError` naming the file for anything else, before any refused global is called.
    """
    try:
        with open(path, "rb") as f:
            batch = CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError) as e:
        raise CifarPickleError(f"{path}: refused to unpickle as a CIFAR batch: {e}") from None
    if not isinstance(batch, dict):
        raise CifarPickleError(f"{path}: a CIFAR batch is a dict, this file holds a {type(batch).__name__}")
    return batch
