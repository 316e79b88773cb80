"""The PyTorch reference of the benchmarks computes mindclip's LightCLIP objective (golden, no torch here).

`ut/data/lightclip_torch_golden.npz` is written by `ut/data/make_lightclip_golden.py` with the
benchmark's own PyTorch network (mindclip/bench/torch_model.py + lightclip_torch.py) at a tiny size:
its weights, its timm trunk's image stages (fed here in place of the mindcv backbone, whose shapes
are compared instead), a hand-made batch, and the total and the four loss parts at progress values
in every soft-target regime. mindclip's `LightCLIPPretrain` + `LightClipObjective` + `BatchLoss` (the
loss the train step differentiates) get the same weights and batch and must give the same numbers.
A change of the objective on the mindclip side fails the comparison; a change of the PyTorch side
fails `test_golden_is_from_the_current_reference` until the golden is made again (and compared).
"""
import collections
import hashlib
import json
import os

import numpy as np
import pytest
import mindspore as ms
from mindspore import nn

from mindclip.data import BATCH_COLUMNS
from mindclip.models import create_model
from mindclip.models.backbones import MINDCV_FEATURE_MODELS
from mindclip.models.lightclip import LightCLIPPretrain
from mindclip.models.registry import get_model_config
from mindclip.models.text import load_open_clip_text_state
from mindclip.train.batch_losses import BatchLoss
from mindclip.train.config import LossSection
from mindclip.train.objectives import LightClipObjective

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "ut", "data", "lightclip_torch_golden.npz")
REFERENCE_SOURCES = ("mindclip/bench/torch_model.py", "mindclip/bench/lightclip_torch.py")
BENCH_PRESET = "lightclip_mobilenetv2"
# float32 on both sides. A 49409-wide log-softmax sums in float32: measured against float64 on such rows,
# torch is off by up to 7e-5 and MindSpore by 1.5e-5, so the MLM parts (~10) agree to ~3e-6 relative.
ATOL, RTOL = 1e-5, 1e-5
HEAD_NAMES = {".block.ln_1_kv.": ".block.ln_kv.", ".block.ln_1.": ".block.ln_q.", "visual.head.proj": "visual.proj"}


@pytest.fixture(scope="module")
def golden():
    with np.load(GOLDEN) as data:
        arrays = {k: data[k] for k in data.files}
    return arrays, json.loads(str(arrays.pop("meta_json")))


def torch_weights(arrays, meta):
    """{torch name: dense float32 array} from the packed `weights` (sparse ones: zero outside their rows)."""
    out = {}
    for name, (offset, shape, rows) in meta["weights"].items():
        count = int(np.prod(shape)) if rows is None else len(rows) * int(np.prod(shape[1:]))
        value = arrays["weights"][offset:offset + count]
        if rows is None:
            out[name] = value.reshape(shape)
        else:
            out[name] = np.zeros(shape, np.float32)
            out[name][rows] = value.reshape([len(rows)] + shape[1:])
    return out


class FixedStages(nn.Cell):
    """A backbone that returns the reference trunk's stage maps whatever the images."""

    def __init__(self, shapes_and_maps):
        super().__init__()
        self.maps = [ms.Tensor(m) if m.ndim == 4 else ms.Tensor(np.zeros(m, np.float32)) for m in shapes_and_maps]

    def construct(self, images):
        return self.maps[0], self.maps[1], self.maps[2], self.maps[3]


def build_network(arrays, meta):
    """mindclip's LightCLIPPretrain at the golden's tiny size, its mindcv backbone still in place."""
    arch = meta["tiny_arch"]
    clip = create_model("tiny_mobilenetv2", **{
        "embed_dim": arch["embed_dim"], "image.image_size": arch["image_size"],
        "text.context_length": arch["context_length"], "text.vocab_size": arch["vocab_size"] + 1,
        "text.width": arch["width"], "text.heads": arch["heads"], "text.layers": arch["layers"]})
    return LightCLIPPretrain(clip)


def load_weights(net, state):
    """The reference's weights into `net` (text tower by open_clip's names); returns the names set."""
    load_open_clip_text_state(net.clip.text, state, prefix="clip.")
    params = dict(net.parameters_and_names())
    loaded = {f"clip.text.{name}" for name, _ in net.clip.text.parameters_and_names()}
    for name, value in state.items():
        ours = name
        for theirs, mine in HEAD_NAMES.items():
            ours = ours.replace(theirs, mine)
        if ours in params:
            params[ours].set_data(ms.Tensor(value, params[ours].dtype))
            loaded.add(ours)
    return loaded


def parameter_groups(net):
    """[[group, shape], ...] of every trainable parameter, sorted, grouped as the generator groups torch's."""
    def group(name):
        parts = name.split(".")
        if parts[0] != "clip":
            return parts[0]
        if parts[1] == "visual":
            return "image.backbone" if parts[2] == "backbone" else "image.proj"
        return "text" if parts[1] == "text" else parts[1]

    return sorted([group(n), list(p.shape)] for n, p in net.parameters_and_names()
                  if p.requires_grad)


@pytest.fixture(scope="module")
def parity(golden):
    """(mindclip net with the golden's weights and stages, the names it loaded, its trainable shapes,
    the shapes of its own mindcv backbone's stages on the golden's image size)."""
    arrays, meta = golden
    net = build_network(arrays, meta)
    shapes = parameter_groups(net)
    size = meta["tiny_arch"]["image_size"]
    stages = net.clip.visual.backbone(ms.Tensor(np.zeros((4, 3, size, size), np.float32)))
    loaded = load_weights(net, torch_weights(arrays, meta))
    net.clip.visual.backbone = FixedStages([arrays[f"stage{i}"] for i in range(1, 5)])
    return net, loaded, shapes, [list(s.shape) for s in stages]


def batch_tensors(arrays, meta):
    """The lightclip batch in its column order; the images are zeros (FixedStages never reads them)."""
    size, tokens = meta["tiny_arch"]["image_size"], arrays["batch/tokens"]
    columns = {"image": np.zeros((tokens.shape[0], 3, size, size), np.float32),
               **{k[len("batch/"):]: v for k, v in arrays.items() if k.startswith("batch/")}}
    return [ms.Tensor(columns[name]) for name in BATCH_COLUMNS["lightclip"]]


def test_golden_is_from_the_current_reference(golden):
    _, meta = golden
    digest = hashlib.sha256()
    for path in REFERENCE_SOURCES:
        with open(os.path.join(ROOT, path), "rb") as f:
            digest.update(f.read())
    assert meta["reference_sha256"] == digest.hexdigest(), (
        f"{' or '.join(REFERENCE_SOURCES)} changed since {GOLDEN} was made: run "
        f"`/work/refvenv/bin/python ut/data/make_lightclip_golden.py` (a PyTorch interpreter) and rerun this test")


def test_same_parameters_stages_and_every_weight_loaded(golden, parity):
    arrays, meta = golden
    net, loaded, shapes, stage_shapes = parity
    assert shapes == [[g, list(s)] for g, s in meta["tiny_shapes"]]
    golden_stages = [list(arrays["stage1"])] + [list(arrays[f"stage{i}"].shape) for i in (2, 3, 4)]
    assert stage_shapes == golden_stages  # mindcv's cut points and strides are timm's
    not_loaded = sorted(n for n, p in net.parameters_and_names() if p.requires_grad and n not in loaded
                        and not n.startswith("clip.visual.backbone."))
    assert not_loaded == []


def test_benchmark_network_is_the_preset(golden):
    """The reference's full-size dims are lightclip_mobilenetv2's: with the tiny check, the same shapes and FLOPs."""
    bench = golden[1]["bench"]
    cfg = get_model_config(BENCH_PRESET)
    ours = {"embed_dim": cfg.embed_dim, "width": cfg.text.width, "heads": cfg.text.heads, "layers": cfg.text.layers,
            "vocab_size": cfg.text.vocab_size, "context_length": cfg.text.context_length,
            "image_size": cfg.image.image_size}
    assert bench["arch"] == ours
    mindcv_name, _, channels = MINDCV_FEATURE_MODELS[cfg.image.backbone]
    assert mindcv_name.replace("_", "") == bench["timm_trunk"].replace("_", "")  # mobilenet_v2_100 / mobilenetv2_100
    assert list(channels) == bench["stage_channels"]


def test_loss_hyper_parameters_are_mindclips(golden):
    _, meta = golden
    loss = LossSection().for_method("lightclip")
    assert meta["loss_weights"] == {"inst": loss.inst_weight, "token": loss.token_weight, "mlm": loss.mlm_weight}
    assert meta["soft_targets"] == {"r1": loss.r1, "r2": loss.r2, "delta": loss.delta}


def test_loss_parts_match_the_reference_in_every_regime(golden, parity):
    arrays, meta = golden
    net = parity[0]
    net.set_train(True)
    loss_cell = BatchLoss(LightClipObjective(net, LossSection().for_method("lightclip")), rank=0, world_size=1)
    batch = batch_tensors(arrays, meta)
    assert meta["parts"] == ["total", *LightClipObjective.part_names]
    rows = collections.OrderedDict()
    for progress in meta["progresses"]:
        loss, parts = loss_cell(ms.Tensor(progress, ms.float32), *batch)
        rows[progress] = np.concatenate([[float(loss.asnumpy())], parts.asnumpy()])
    for progress, ours in rows.items():
        np.testing.assert_allclose(ours, arrays[f"loss/{progress}"], atol=ATOL, rtol=RTOL,
                                   err_msg=f"progress {progress}: (total, {', '.join(meta['parts'][1:])})")
    inst = [rows[p][1] for p in meta["progresses"]]
    assert len({round(v, 4) for v in inst}) == 3, "the golden's progress values must reach all three regimes"
