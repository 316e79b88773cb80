"""mindclip's train step against open_clip's on the same model and batch: the batch both sides get and
the row that compares their results (tools/bench/side_by_side.py runs the two benchmarks).

Per method, one synthetic batch (`BatchSpec`) is saved twice: as it is, for open_clip, and cut to the
batch's text-length bucket as mindclip's pipeline cuts it (`mindclip.data.buckets.TrimToBucket`), for
mindclip (the same arrays when no buckets are given). Model: `MODEL` on both sides
(ut/test_torch_reference_parity.py checks that the PyTorch network has its parameter shapes and computes
its objective). FLOPs come from the PyTorch network (the same layers and shapes), counted again at the
cut length. The ratio is open_clip step / mindclip step: above 1, mindclip is faster.
"""
import os

import numpy as np

from mindclip.data.buckets import TrimToBucket, resolve_buckets
from mindclip.data.columns import CAPTION_TOKENS, TEXT_COLUMNS

MODEL = "lightclip_mobilenetv2"  # the preset torch_model.py rebuilds


def save_batches(method, spec, image_size, buckets, folder):
    """((.npz of the full batch, .npz of mindclip's copy cut to its bucket), the cut text length)."""
    full = spec.synthetic(method, image_size)
    cut = dict(full)
    if buckets:
        text = TEXT_COLUMNS[method]
        trimmed = TrimToBucket(resolve_buckets(buckets, spec.text_length), method)(*[full[n] for n in text])
        cut.update(zip(text, trimmed))
    paths = [os.path.join(folder, f"{method}_{kind}.npz") for kind in ("full", "cut")]
    np.savez(paths[0], **full)
    np.savez(paths[1], **cut)
    return paths, cut[CAPTION_TOKENS].shape[1]


def compare(method, spec, image_size, buckets, cut_length, ours, theirs, our_flops):
    """The row of one method from mindclip's train result `ours` (on the batch cut to `cut_length`),
    open_clip's torch_reference result `theirs` (on the full batch, with FLOPs) and the FLOPs at the cut."""
    flops, ms_step, oc_step = theirs["flops_per_step"], ours["step_s_median"], theirs["step_s_median"]
    return {"method": method, "model": ours["model"], "batch": spec.batch, "image_size": image_size,
            "lengths": spec.lengths, "buckets": buckets, "mindclip_text_length": cut_length,
            "open_clip_text_length": spec.text_length, "mindclip_step_s": ms_step, "open_clip_step_s": oc_step,
            "ratio_open_clip_over_mindclip": round(oc_step / ms_step, 3), "mindclip_flops_per_step": our_flops,
            "open_clip_flops_per_step": flops, "mindclip_gflops_per_s": round(our_flops / ms_step / 1e9, 2),
            "open_clip_gflops_per_s": round(flops / oc_step / 1e9, 2), "mindclip": ours, "open_clip": theirs}


COLUMNS = (("method", "{method}"), ("text length (mindclip / open_clip)", "{mindclip_text_length} / {open_clip_text_length}"),
           ("mindclip step (s)", "{mindclip_step_s:.3f}"), ("open_clip step (s)", "{open_clip_step_s:.3f}"),
           ("open_clip / mindclip", "{ratio_open_clip_over_mindclip:.2f}x"),
           ("GFLOP per step (mindclip / open_clip)", "{mindclip_gflop:.1f} / {open_clip_gflop:.1f}"),
           ("mindclip GFLOP/s", "{mindclip_gflops_per_s:.1f}"), ("open_clip GFLOP/s", "{open_clip_gflops_per_s:.1f}"))


def markdown_table(rows, steps, warmup):
    """A heading line (model, batch, versions) and the rows as a Markdown table."""
    first, theirs = rows[0], rows[0]["open_clip"]
    lines = [f"{first['model']}, batch {first['batch']}, {first['image_size']}x{first['image_size']}, fp32, median of "
             f"{steps} steps after {warmup} warm-up; torch {theirs['torch']}, open_clip {theirs['open_clip']}, "
             f"timm {theirs['timm']}",
             "| " + " | ".join(title for title, _ in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for r in rows:
        gflop = {f"{side}_gflop": r[f"{side}_flops_per_step"] / 1e9 for side in ("mindclip", "open_clip")}
        lines.append("| " + " | ".join(cell.format(**r, **gflop) for _, cell in COLUMNS) + " |")
    return "\n".join(lines)
