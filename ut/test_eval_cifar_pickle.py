"""CIFAR batches are read with a restricted unpickler: real layouts load, a crafted file runs nothing."""
import os
import pickle
import pickletools
import struct

import numpy as np
import pytest
from tool_loader import load_tool

from mindclip.eval import datasets
from mindclip.eval.cifar_pickle import CifarPickleError, load_cifar_batch


class Python2Pickler(pickle._Pickler):
    """Pickles bytes and str as Python 2's cPickle pickled its str (BINSTRING opcodes), as the
    official CIFAR files were written; everything else as Python 3 does at protocol 2."""

    def save_binstring(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_binstring
    dispatch[str] = save_binstring


def cifar_batch(n=5, label_key=b"labels", seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = [int(v) for v in np.arange(n) * 7 % 10]
    batch = {b"batch_label": b"testing batch 1 of 1", b"data": pixels.transpose(0, 3, 1, 2).reshape(n, -1),
             label_key: labels, b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    return batch, pixels, labels


def write(path, obj, how):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        if how == "python2":
            Python2Pickler(f, protocol=2).dump(obj)
        else:
            pickle.dump(obj, f, protocol=int(how[-1]))


def globals_named(path):
    """(module, name) of every GLOBAL / STACK_GLOBAL in a pickle, read with pickletools (nothing runs)."""
    with open(path, "rb") as f:
        ops = list(pickletools.genops(f.read()))
    names, strings = set(), []
    for op, arg, _ in ops:
        if op.name == "GLOBAL":
            names.add(tuple(arg.split(" ", 1)))
        elif op.name == "STACK_GLOBAL":
            names.add((strings[-2], strings[-1]))
        elif isinstance(arg, str):
            strings.append(arg)
    return names


@pytest.mark.parametrize("how", ["python2", "protocol2", "protocol5"])
def test_cifar_layouts_load_with_the_restricted_unpickler(tmp_path, how):
    batch, pixels, labels = cifar_batch()
    path = str(tmp_path / "cifar-10-batches-py" / "test_batch")
    write(path, batch, how)
    if how == "python2":  # what the official files name: numpy's array rebuilders only
        assert globals_named(path) == {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                                       ("numpy", "dtype")}
    loaded = load_cifar_batch(path)
    assert loaded[b"labels"] == labels and loaded[b"filenames"] == batch[b"filenames"]
    got = datasets.read_cifar(str(tmp_path), "cifar10", "test")
    np.testing.assert_array_equal(got.labels, labels)
    np.testing.assert_array_equal(np.stack([np.asarray(got.images[i]) for i in range(len(got))]), pixels)


class RunsACommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def malicious_batch(marker):
    batch, _, _ = cifar_batch()
    batch[b"labels"] = RunsACommand(f"touch {marker}")
    return batch


def test_a_crafted_batch_is_refused_and_its_command_never_runs(tmp_path):
    live = tmp_path / "live_marker"
    write(str(tmp_path / "check" / "test_batch"), malicious_batch(live), "protocol2")
    with open(tmp_path / "check" / "test_batch", "rb") as f:
        pickle.load(f, encoding="bytes")  # the payload is live: plain pickle.load runs the command
    assert live.exists()

    marker = tmp_path / "pwned"
    path = str(tmp_path / "cifar-10-batches-py" / "test_batch")
    write(path, malicious_batch(marker), "protocol2")
    with pytest.raises(CifarPickleError, match=rf"{path}: refused .* names (posix|os)\.system"):
        datasets.read_cifar(str(tmp_path), "cifar10", "test")
    assert not marker.exists()


@pytest.mark.parametrize("payload, says", [
    ((eval, ("1 + 1",)), r"(__builtin__|builtins)\.eval"),
    ((np.load, ("x.npy",)), "numpy.load"),
    ((np.dtype, ("O",)), "object dtype"),
])
def test_other_globals_and_object_arrays_are_refused(tmp_path, payload, says):
    class Payload:
        def __reduce__(self):
            return payload

    path = str(tmp_path / "test_batch")
    write(path, {b"data": Payload()}, "protocol2")
    with pytest.raises(CifarPickleError, match=says):
        load_cifar_batch(path)


def test_not_a_batch_is_refused(tmp_path):
    path = str(tmp_path / "test_batch")
    write(path, [1, 2, 3], "protocol2")
    with pytest.raises(CifarPickleError, match="a CIFAR batch is a dict, this file holds a list"):
        load_cifar_batch(path)
    with open(path, "wb") as f:
        f.write(b"\x80\x02}q\x00(U\x04data")  # truncated
    with pytest.raises(CifarPickleError, match="refused to unpickle"):
        load_cifar_batch(path)


def test_eval_tool_refuses_a_crafted_cifar_batch_in_one_line(tmp_path, capsys):
    marker = tmp_path / "pwned"
    write(str(tmp_path / "cifar-10-batches-py" / "test_batch"), malicious_batch(marker), "protocol2")
    rc = load_tool("eval").main(["--model", "tiny_resnet18", "--task", "zeroshot", "--dataset", "cifar10",
                                 "--root", str(tmp_path), "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "refused to unpickle" in err
    assert not marker.exists() and not (tmp_path / "out").exists()
