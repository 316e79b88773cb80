"""Convert an open_clip / OpenAI CLIP checkpoint into a mindclip checkpoint.

    python tools/convert.py ViT-B-32.safetensors --model clip_vit_b32 --output ckpt/clip_vit_b32.ckpt
    python tools/convert.py RN50.pt --model clip_rn50 --output ckpt/clip_rn50.ckpt        # needs torch
    python tools/convert.py laion.safetensors --model clip_vit_b32 --output x.ckpt \\
        --set text.act=gelu --set image.tower.act=gelu                               # non-OpenAI weights

The `clip_*` presets use quick_gelu (OpenAI's activation); open_clip models trained elsewhere
usually use exact GELU: override `act` as above. The result loads with
`mindclip.create_model(name, checkpoint=output)`.
"""
import argparse
import sys

import mindclip  # noqa: F401  (sets the oneDNN cap before mindspore loads)
from mindclip.config import parse_override
from mindclip.models.convert import convert_open_clip_state, kept_at_init, read_state_dict
from mindclip.models.registry import create_model
from mindclip.models.weights import load_weights, save_weights


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="open_clip / OpenAI state dict: .safetensors (NumPy) or .pt/.pth/.bin (torch)")
    parser.add_argument("--model", required=True, help="mindclip preset, e.g. clip_rn50, clip_vit_b32, clip_vit_b16")
    parser.add_argument("--output", required=True, help="mindclip checkpoint to write")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="preset override, e.g. text.act=gelu (repeatable)")
    return parser.parse_args(argv)


def main(argv=None):
    """Convert; returns the path written."""
    args = parse_args(argv)
    overrides = dict(parse_override(text) for text in args.overrides)
    model = create_model(args.model, **overrides)
    state = read_state_dict(args.input)
    load_weights(model, convert_open_clip_state(state, model))  # strict: every weight, every shape
    save_weights(model, args.output)
    count = sum(p.size for p in model.get_parameters())
    print(f"{args.input} -> {args.output}: {args.model}, {count / 1e6:.2f} M values")
    kept = kept_at_init(model)
    if kept:
        print(f"not in the source, kept at their initial values: {', '.join(kept)}")
    return args.output


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
