"""Export the inference towers to MINDIR, write the sidecar, and verify the files against the model.

    report = export_model(create_model("tiny_resnet18"), "out/export")   # fp32, verified
    report = export_model(model, "out/export_fp16", fp16=True)           # float16 compute and weights

Both files take a dynamic batch: images (None, 3, S, S) float32 and tokens (None, L) int32, and
return L2-normalised (None, E) float32 embeddings.

The exported cells are the inference encoders `mindclip.models.ImageEncoder` / `TextEncoder`: the
model's own inference contract, L2-normalised in float32. A graph is traced from `construct` only,
so the parameters that reach a MINDIR file are exactly those the encoder uses: the fusion module,
MLM heads, token projections and ROI path never do.
"""
import contextlib
import datetime
import os

import numpy as np
import mindspore as ms
from mindspore import nn

import mindclip
from mindclip.export.float16 import float16_copy
from mindclip.export.sidecar import FORMAT, FORMAT_VERSION, SIDECAR_NAME, file_sha256, sidecar_path, write_sidecar
from mindclip.models.clip import ImageEncoder, TextEncoder
from mindclip.tokenizer import default_tokenizer

IMAGE_FILE = "image_encoder.mindir"
TEXT_FILE = "text_encoder.mindir"
FP32_TOLERANCE = 1e-5
# float16 towers against the float32 model: measured max |diff| of the unit embeddings was 2e-4 to
# 5e-4 (tiny_resnet18, lightclip_resnet18, lightclip_swin_nano; docs/deployment.md). The bound is
# 10x the largest, so fp16 rounding passes while a broken fp16 graph fails: overflowing weights give
# NaN, and features that underflow in fp16 (randomly initialised MobileNet-V2: norm 2e-8) give 1e-2.
FP16_TOLERANCE = 5e-3
VERIFY_BATCH_SIZES = (1, 5)

# Captions for the text-tower check: different lengths (EOT at different positions), one truncated.
SAMPLE_CAPTIONS = (
    "a photo of a dog.",
    "a small red car parked next to a tall building on a rainy day",
    "cat",
    "two people riding bicycles along the beach at sunset while a dog runs behind them " * 4,
    "a bowl of fruit on a wooden table",
)


class ExportVerificationError(RuntimeError):
    """An exported file whose outputs differ from the model's by more than the tolerance.

    `report` is the sidecar that was not written, with its `verification` figures.
    """

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


def load_tower(path, input_shape, dtype):
    """`nn.GraphCell` of a MINDIR file, compiled once for a dynamic batch.

    `input_shape` is the sidecar's shape with `None` for the batch. Declaring it with `set_inputs`
    matters: without it, a second batch size recompiles the loaded graph, which fails for graphs
    holding control flow ("The actor already exists").
    """
    cell = nn.GraphCell(ms.load(path))
    cell.set_inputs(ms.Tensor(shape=list(input_shape), dtype=dtype))
    return cell


def sample_inputs(image_size, context_length, batch, seed=0):
    """Deterministic check inputs: images (batch, 3, S, S) ~ N(0, 1) float32, tokens (batch, L) int32."""
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch, 3, image_size, image_size)).astype(np.float32)
    captions = [SAMPLE_CAPTIONS[i % len(SAMPLE_CAPTIONS)] for i in range(batch)]
    tokens = default_tokenizer()(captions, context_length)
    return images, tokens


@contextlib.contextmanager
def pynative_mode():
    """Run the block in PyNative mode, then restore the previous execution mode."""
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.PYNATIVE_MODE)
    try:
        yield
    finally:
        ms.set_context(mode=previous)


def model_embeddings(model, images, tokens):
    """The model's own normalised embeddings (`encode_image`, `encode_text`) as NumPy arrays.

    Run in PyNative mode: the reference is then computed without tracing any graph (and without
    compiling the two towers once more, which costs more than the export itself).
    """
    model.set_train(False)
    with pynative_mode():
        image = model.encode_image(ms.Tensor(images), normalize=True).asnumpy()
        text = model.encode_text(ms.Tensor(tokens), normalize=True).asnumpy()
    return image.astype(np.float32), text.astype(np.float32)


def max_abs_diff_by_batch(cell, inputs, reference, batch_sizes):
    """{str(batch): max |cell(inputs[:batch]) - reference[:batch]|} for each batch size."""
    diffs = {}
    for batch in batch_sizes:
        out = cell(ms.Tensor(inputs[:batch])).asnumpy()
        if out.shape != reference[:batch].shape:
            raise ExportVerificationError(f"exported output shape {out.shape} at batch {batch}, "
                                          f"expected {reference[:batch].shape}")
        diffs[str(batch)] = float(np.abs(out.astype(np.float32) - reference[:batch]).max())
    return diffs


def _image_normalisation():
    """(mean, std) of the eval transform that `mindclip.data.preprocess_image` applies."""
    from mindclip.data import CLIP_MEAN, CLIP_STD

    return [float(v) for v in CLIP_MEAN], [float(v) for v in CLIP_STD]


def mindir_inputs(path):
    """[(name, dims)] of the graph inputs recorded in a MINDIR file (a dim of -1 is dynamic).

    The name (e.g. `..._ImageEncoder_construct_81:images`) is what `converter_lite`'s
    `input_shape` option must be given.
    """
    from mindspore.train import mind_ir_pb2

    proto = mind_ir_pb2.ModelProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    return [(graph_input.name, [int(d) for d in graph_input.tensor[0].dims]) for graph_input in proto.graph.input]


def _export_graph(cell, input_spec, path):
    """`ms.export` with a dynamic batch; `path` ends in `.mindir` (MindSpore appends it). Returns the
    file's input name, after checking that the file records the input shape with a dynamic batch."""
    cell.set_train(False)
    ms.export(cell, input_spec, file_name=path[: -len(".mindir")], file_format="MINDIR")
    if not os.path.isfile(path):
        raise RuntimeError(f"ms.export reported no error but wrote no {path}")
    inputs = mindir_inputs(path)
    expected = [-1] + list(input_spec.shape[1:])
    if len(inputs) != 1 or inputs[0][1] != expected:
        raise RuntimeError(f"{path}: graph inputs {inputs}, expected one input of shape {expected}")
    return inputs[0][0]


def build_sidecar(model, image_file, text_file, fp16, tolerance, batch_sizes, model_name=None, checkpoint=None):
    """The sidecar dict (see `mindclip.export.sidecar`) of an export folder, without `verification`."""
    image_size, context_length = int(model.visual.image_size), int(model.text.context_length)
    log_scale = float(model.logit_scale.asnumpy())
    mean, std = _image_normalisation()
    tokenizer = default_tokenizer()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": {"name": model_name, "checkpoint": checkpoint, "embed_dim": int(model.embed_dim),
                  "logit_scale": float(np.exp(log_scale)), "log_logit_scale": log_scale},
        "image": {"file": os.path.basename(image_file), "sha256": file_sha256(image_file),
                  "input": {"shape": [None, 3, image_size, image_size], "dtype": "float32"},
                  "output": {"shape": [None, int(model.embed_dim)], "dtype": "float32", "l2_normalized": True},
                  "image_size": image_size, "resize": "shorter side to image_size, bicubic", "crop": "center",
                  "mean": mean, "std": std},
        "text": {"file": os.path.basename(text_file), "sha256": file_sha256(text_file),
                 "input": {"shape": [None, context_length], "dtype": "int32"},
                 "output": {"shape": [None, int(model.embed_dim)], "dtype": "float32", "l2_normalized": True},
                 "context_length": context_length, "vocab_size": int(model.text.vocab_size),
                 "tokenizer_vocab_sha256": tokenizer.vocab_sha256, "sot_token_id": tokenizer.sot_token_id,
                 "eot_token_id": tokenizer.eot_token_id, "pad_token_id": tokenizer.pad_token_id},
        "export": {"fp16": bool(fp16), "dynamic_batch": True, "tolerance": float(tolerance),
                   "verify_batch_sizes": [int(b) for b in batch_sizes], "mindspore_version": ms.__version__,
                   "mindclip_version": mindclip.__version__,
                   "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
    }


def verify_export(export_dir, images, tokens, image_reference, text_reference, tolerance,
                  batch_sizes=VERIFY_BATCH_SIZES):
    """Reload both files of `export_dir` and compare them with reference embeddings.

    Returns `{"image": {batch: diff}, "text": {batch: diff}, "max_abs_diff", "tolerance", "passed"}`;
    does not raise (the caller decides).
    """
    h, w = images.shape[2:]
    image_cell = load_tower(os.path.join(export_dir, IMAGE_FILE), [None, 3, h, w], ms.float32)
    text_cell = load_tower(os.path.join(export_dir, TEXT_FILE), [None, tokens.shape[1]], ms.int32)
    result = {"image": max_abs_diff_by_batch(image_cell, images, image_reference, batch_sizes),
              "text": max_abs_diff_by_batch(text_cell, tokens, text_reference, batch_sizes)}
    worst = float(np.max([*result["image"].values(), *result["text"].values()]))  # NaN propagates, and fails
    result.update(max_abs_diff=worst, tolerance=float(tolerance), passed=bool(worst <= tolerance))
    return result


def export_model(model, out_dir, fp16=False, verify=True, tolerance=None, batch_sizes=VERIFY_BATCH_SIZES,
                 model_name=None, checkpoint=None, seed=0):
    """Write `image_encoder.mindir`, `text_encoder.mindir` and the sidecar into `out_dir`.

    Args:
        model: a CLIP from `mindclip.create_model` (left unchanged, also with `fp16`).
        out_dir: folder to write (created; an older sidecar there is removed first).
        fp16: export float16 towers (weights and compute; LayerNorm/BatchNorm stay float32).
        verify: reload both files and compare them with `model` at each of `batch_sizes`.
        tolerance: max |diff| allowed; default `FP32_TOLERANCE` or `FP16_TOLERANCE`.
        model_name, checkpoint: recorded in the sidecar.
        seed: seed of the random check images.

    Returns:
        The sidecar dict, with `verification` when `verify` (written to `<out_dir>/mindclip_export.json`).

    Raises:
        ExportVerificationError: a file differs from the model by more than `tolerance`; the sidecar
            is then not written, so the folder cannot be used for inference.
    """
    tolerance = (FP16_TOLERANCE if fp16 else FP32_TOLERANCE) if tolerance is None else float(tolerance)
    os.makedirs(out_dir, exist_ok=True)
    if os.path.exists(sidecar_path(out_dir)):
        os.remove(sidecar_path(out_dir))
    model.set_train(False)
    size, length = int(model.visual.image_size), int(model.text.context_length)
    images, tokens = sample_inputs(size, length, max(batch_sizes), seed)
    if verify:  # computed before any float16 copy: the reference is the float32 model
        image_reference, text_reference = model_embeddings(model, images, tokens)
    tower_model = float16_copy(model) if fp16 else model
    image_path, text_path = os.path.join(out_dir, IMAGE_FILE), os.path.join(out_dir, TEXT_FILE)
    # float16: the additive causal mask (-1e9 style constant) becomes -inf when cast, which softmax
    # handles (the diagonal is always 0); NumPy's overflow warning for that cast is expected.
    with np.errstate(over="ignore"):
        image_input = _export_graph(ImageEncoder(tower_model),
                                    ms.Tensor(shape=[None, 3, size, size], dtype=ms.float32), image_path)
        text_input = _export_graph(TextEncoder(tower_model), ms.Tensor(shape=[None, length], dtype=ms.int32),
                                   text_path)
    sidecar = build_sidecar(model, image_path, text_path, fp16, tolerance, batch_sizes, model_name, checkpoint)
    sidecar["image"]["input"]["name"], sidecar["text"]["input"]["name"] = image_input, text_input
    if verify:
        sidecar["verification"] = verify_export(out_dir, images, tokens, image_reference, text_reference,
                                                tolerance, batch_sizes)
        if not sidecar["verification"]["passed"]:
            raise ExportVerificationError(
                f"{out_dir}: exported towers differ from the model by {sidecar['verification']['max_abs_diff']:.3g} "
                f"> tolerance {tolerance:g} (image {sidecar['verification']['image']}, "
                f"text {sidecar['verification']['text']}); no {SIDECAR_NAME} written", report=sidecar)
    write_sidecar(out_dir, sidecar)
    return sidecar
