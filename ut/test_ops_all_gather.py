"""AllGatherWithGrad across 2 real CPU processes (msrun): distributed gradients = full-batch gradients.

ut/dist_gather_check.py runs the losses on half a batch per rank, gathers features with gradient and
averages gradients over ranks; this test recomputes the full-batch loss and gradients with NumPy.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest

import mindspore as ms

from dist_gather_check import CASES, SCALE, fixed_data
from mindclip.ops import AllGatherWithGrad
from test_losses_contrastive import reference_loss_and_grads

UT_DIR = os.path.dirname(os.path.abspath(__file__))
WORLD = 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    if shutil.which("msrun", path=os.path.dirname(sys.executable)) is None:
        pytest.fail(f"msrun not found next to {sys.executable}")
    out_dir = tmp_path_factory.mktemp("dist_gather")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    command = ["msrun", f"--worker_num={WORLD}", f"--local_worker_num={WORLD}",
               f"--master_port={free_port()}", f"--log_dir={out_dir / 'log'}", "--join=True",
               os.path.join(UT_DIR, "dist_gather_check.py"), str(out_dir)]
    done = subprocess.run(command, env=env, cwd=str(out_dir), capture_output=True, text=True, timeout=600)
    files = [out_dir / f"rank_{r}.json" for r in range(WORLD)]
    if done.returncode != 0 or not all(f.exists() for f in files):
        logs = "".join((out_dir / "log" / f"worker_{r}.log").read_text()[-3000:] for r in range(WORLD)
                       if (out_dir / "log" / f"worker_{r}.log").exists())
        pytest.fail(f"msrun failed (rc {done.returncode}):\n{done.stdout[-2000:]}\n{logs}")
    return [json.loads(f.read_text()) for f in files]


def numpy_features(data):
    image = data["image_x"] @ data["image_w"].T + data["image_b"]
    text = data["text_x"] @ data["text_w"].T + data["text_b"]
    return image.astype(np.float64), text.astype(np.float64)


def dense_grads(data, d_image, d_text):
    """Parameter gradients of y = x W^T + b for both towers, named as in Towers."""
    return {"image.weight": d_image.T @ data["image_x"], "image.bias": d_image.sum(0),
            "text.weight": d_text.T @ data["text_x"], "text.bias": d_text.sum(0)}


def pyramid_reference(image, text, alpha=0.2):
    """Loss and feature gradients of dist_gather_check.PyramidNet (full batch, label smoothing)."""
    # (image-side features, text-side features, d features / d image, d features / d text)
    pairs = [(image, 2.0 * text, 1.0, 2.0),                   # (v_global, t_summary)
             (0.5 * image, text, 0.5, 1.0),                   # (v_local, t_text)
             (image * image, 2.0 * text, 2.0 * image, 2.0),   # (v_roi, t_summary)
             (image * image, text, 2.0 * image, 1.0)]         # (v_roi, t_text)
    loss, d_image, d_text = 0.0, 0.0, 0.0
    for v, t, dv_dimage, dt_dtext in pairs:
        value, d_v, d_t, _ = reference_loss_and_grads(v, t, SCALE, 0.5, 0.0, 2.0, alpha)  # smoothing
        loss += 0.25 * value
        d_image = d_image + 0.25 * d_v * dv_dimage
        d_text = d_text + 0.25 * d_t * dt_dtext
    return loss, d_image, d_text


def reference(name, data):
    image, text = numpy_features(data)
    if name == "pyramid_local":
        loss, d_image, d_text = pyramid_reference(image, text)
    else:
        progress = CASES[name][2]
        one_hot = name.startswith("clip")
        loss, d_image, d_text, _ = reference_loss_and_grads(
            image, text, SCALE, 0.0 if one_hot else progress)
        if name == "clip_global_no_gather_grad":  # other ranks' features are constants: 1/W of it
            d_image, d_text = d_image / WORLD, d_text / WORLD
    return loss, dense_grads(data, d_image, d_text)


@pytest.mark.parametrize("name", list(CASES))
def test_reduced_gradients_equal_full_batch(rank_results, name):
    want_loss, want_grads = reference(name, fixed_data())
    losses = [r[name]["loss"] for r in rank_results]
    if "local" in name:  # each rank holds its rows' share; their mean is the global loss
        np.testing.assert_allclose(np.mean(losses), want_loss, rtol=1e-5)
        assert abs(losses[0] - losses[1]) > 1e-4
    else:
        np.testing.assert_allclose(losses, [want_loss] * WORLD, rtol=1e-5)
    for rank_result in rank_results:
        for param, want in want_grads.items():
            np.testing.assert_allclose(rank_result[name]["grads"][param], want, rtol=1e-5, atol=1e-5,
                                       err_msg=f"{name} rank {rank_result['rank']} {param}")


def test_world_of_one_is_identity():
    gather = AllGatherWithGrad(rank=0, world_size=1)
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    np.testing.assert_array_equal(gather(ms.Tensor(x)).asnumpy(), x)
    grad = ms.grad(gather)(ms.Tensor(x)).asnumpy()
    np.testing.assert_array_equal(grad, np.ones_like(x))


def test_bad_rank_is_refused():
    with pytest.raises(ValueError, match="rank 2 is outside a world of 2"):
        AllGatherWithGrad(rank=2, world_size=2)

