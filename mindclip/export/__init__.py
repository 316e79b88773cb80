"""Export of the inference encoders to MINDIR, and inference from the exported files alone.

    from mindclip.export import export_model, ExportedCLIP
    export_model(mindclip.create_model("tiny_resnet18"), "out/export")
    ExportedCLIP("out/export").zero_shot(["cat.jpg"], ["cat", "dog"])

Modules:
    float16   float16_copy: the model computing in float16, normalisation layers in float32
    mindir    export_model: export the ImageEncoder / TextEncoder cells of mindclip.models (normalised
              embeddings), verify the files against the model, write the sidecar
    sidecar   the JSON sidecar: writing, reading, validation
    infer     ExportedCLIP: zero-shot and similarity from an export folder
"""
from mindclip.export.float16 import float16_copy
from mindclip.export.infer import DEFAULT_TEMPLATES, ExportedCLIP, ImageReadError, TextTooLongError, read_image
from mindclip.export.mindir import (FP16_TOLERANCE, FP32_TOLERANCE, IMAGE_FILE, TEXT_FILE, ExportVerificationError,
                                    export_model, load_tower, verify_export)
from mindclip.export.sidecar import SIDECAR_NAME, SidecarError, read_sidecar
from mindclip.models.clip import ImageEncoder, TextEncoder  # the exported cells

__all__ = ["export_model", "verify_export", "load_tower", "ExportVerificationError", "FP32_TOLERANCE",
           "FP16_TOLERANCE", "IMAGE_FILE", "TEXT_FILE", "ExportedCLIP", "ImageReadError", "TextTooLongError",
           "read_image", "DEFAULT_TEMPLATES", "SIDECAR_NAME", "SidecarError", "read_sidecar", "ImageEncoder",
           "TextEncoder", "float16_copy"]
