"""Export a model's image and text towers to MINDIR (dynamic batch), verified against the model.

    python tools/export.py --model lightclip_mobilenetv2 --checkpoint runs/x/last.ckpt --out export/
    python tools/export.py --model tiny_resnet18 --out /tmp/tiny_export          # random weights
    python tools/export.py --model lightclip_resnet18 --checkpoint ... --out export_fp16/ --fp16

Writes `image_encoder.mindir`, `text_encoder.mindir` and `mindclip_export.json` (the sidecar:
image size, mean/std, context length, tokenizer hash, embedding size, logit_scale, settings and
the verification figures). Exits 1 if an exported file differs from the model by more than the
tolerance (1e-5 fp32, see FP16_TOLERANCE for fp16), 2 on bad arguments or a bad checkpoint.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402  (sets the oneDNN ISA cap before mindspore loads)
from mindclip.config import ConfigError, parse_override  # noqa: E402
from tools._model_flags import add_model_flags  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p, "text.layers=4")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--fp16", action="store_true", help="float16 towers (LayerNorm/BatchNorm stay float32)")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip reloading and comparing")
    p.add_argument("--tolerance", type=float, default=None, help="max |diff| allowed (default 1e-5, fp16: 5e-3)")
    p.add_argument("--device", default="CPU", help="MindSpore device_target (CPU, Ascend, GPU)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    import mindspore as ms

    from mindclip.export import SIDECAR_NAME, ExportVerificationError, export_model

    ms.set_context(mode=ms.GRAPH_MODE, device_target=args.device)
    try:
        overrides = dict(parse_override(text) for text in args.overrides)
        model = mindclip.create_model(args.model, checkpoint=args.checkpoint, **overrides)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        report = export_model(model, args.out, fp16=args.fp16, verify=args.verify, tolerance=args.tolerance,
                              model_name=args.model, checkpoint=args.checkpoint)
    except ExportVerificationError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"exported {args.model} ({'fp16' if args.fp16 else 'fp32'}) to {args.out}: "
          f"{report['image']['file']}, {report['text']['file']}, {SIDECAR_NAME}")
    if "verification" in report:
        check = report["verification"]
        print(f"verified at batch sizes {report['export']['verify_batch_sizes']}: max |diff| image "
              f"{max(check['image'].values()):.3g}, text {max(check['text'].values()):.3g} "
              f"(tolerance {check['tolerance']:g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
