"""Turn a `RawSample` into output records, or say why it is skipped.

Runs in conversion worker processes, so everything here is a plain top-level function.
"""
import dataclasses
import io

import numpy as np

from mindclip.data.images import BadSample, checked_image_bytes, read_file_bytes

MAX_SAMPLE_BYTES = 6 << 20  # must stay below writer.PAGE_SIZE: a MindRecord page holds whole samples

ROI_DIM = 2052  # 2048-d ROI feature + 4-d box (PyramidCLIP)


@dataclasses.dataclass(frozen=True)
class RecordOptions:
    """Which optional columns every record must have."""

    with_summary: bool = False
    summary_fallback: bool = True  # a missing or blank summary becomes the pair's caption (PyramidCLIP)
    with_roi: bool = False
    roi_dim: int = ROI_DIM


def clean_text(value, what="caption"):
    """Caption text as stored: UTF-8, surrounding whitespace stripped, never empty."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BadSample("caption_not_utf8", f"{what}: {e}") from None
    if value is None or (isinstance(value, str) and not value.strip()):
        raise BadSample("empty_caption", f"no {what}")
    if not isinstance(value, str):
        raise BadSample("bad_record", f"{what} is a {type(value).__name__}, not text")
    try:
        value.encode("utf-8")  # lone surrogates: undecodable bytes read with surrogateescape
    except UnicodeEncodeError:
        raise BadSample("caption_not_utf8", f"{what} holds bytes that are not UTF-8") from None
    return value.strip()


def load_roi(source, roi_dim=ROI_DIM):
    """ROI features from a .npy path or bytes -> (m, roi_dim) float32 with finite values."""
    if source is None:
        raise BadSample("bad_roi", "no ROI array")
    data = read_file_bytes(source) if isinstance(source, str) else source
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise BadSample("bad_roi", f"not a .npy array: {e}") from None
    if array.ndim != 2 or array.shape[1] != roi_dim or not np.issubdtype(array.dtype, np.number):
        raise BadSample("bad_roi", f"shape {array.shape} dtype {array.dtype}; want (m, {roi_dim}) float")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise BadSample("bad_roi", "non-finite values")
    return array


def validate_sample(raw, options=RecordOptions()):
    """Return `(records, skips)`: records are dicts for the writer, skips `(where, reason, detail)`.

    A sample with several captions gives one record per good caption; the image is decoded once.
    """
    try:
        if raw.error:
            raise BadSample("bad_record", raw.error)
        shared = _image_and_extras(raw, options)
    except BadSample as e:
        count = len(raw.caption) if isinstance(raw.caption, list) and raw.caption else 1
        return [], [(raw.where, e.reason, e.detail)] * count
    captions = raw.caption if isinstance(raw.caption, list) else [raw.caption]
    records, skips = [], []
    for i, caption in enumerate(captions):
        where = raw.where if len(captions) == 1 else f"{raw.where}#{i}"
        try:
            record = dict(shared, key=where, caption=clean_text(caption))
            if options.with_summary and record["summary"] is None:
                record["summary"] = record["caption"]  # the documented fallback: T_S = T
            records.append(record)
        except BadSample as e:
            skips.append((where, e.reason, e.detail))
    return records, skips


def _summary(value, options):
    """The cleaned summary; None (filled with the caption) when it is blank and the fallback is on."""
    try:
        return clean_text(value, "summary")
    except BadSample as e:
        if e.reason == "empty_caption" and options.summary_fallback:
            return None
        raise


def _image_and_extras(raw, options):
    if raw.image is None:
        raise BadSample("missing_file", "no image in the record")
    data = read_file_bytes(raw.image) if isinstance(raw.image, str) else raw.image
    record = {}
    if options.with_summary:
        record["summary"] = _summary(raw.summary, options)
    if options.with_roi:
        roi = load_roi(raw.roi, options.roi_dim)
        # MindRecord cannot store an empty array: no boxes is one row of zeros with roi_count 0
        record["roi"] = roi.reshape(-1) if len(roi) else np.zeros(options.roi_dim, np.float32)
        record["roi_count"] = np.int32(roi.shape[0])
    record["image"], _, _ = checked_image_bytes(data)
    if len(record["image"]) + record.get("roi", np.zeros(0)).nbytes > MAX_SAMPLE_BYTES:
        raise BadSample("image_too_large", f"{len(record['image'])} bytes")
    return record
