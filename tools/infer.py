"""Zero-shot predictions or image-text similarities from an export folder alone (no checkpoint).

    python tools/infer.py --export export/ --images cat.jpg dog.png --classes cat dog car
    python tools/infer.py --export export/ --images cat.jpg --classes cat dog --templates "a photo of a {}." "a {}"
    python tools/infer.py --export export/ --images cat.jpg dog.png --captions "a cat on a sofa" "a red car"

Exits 2 with a one-line error for a missing or mismatched sidecar, an unreadable image, a text
longer than the exported context length, an empty class name or caption, a template without exactly
one '{}', or --top-k below 1.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the oneDNN ISA cap before mindspore loads)
from mindclip.eval.prompts import is_template  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", required=True, help="folder written by tools/export.py")
    p.add_argument("--images", nargs="+", required=True, help="image files")
    task = p.add_mutually_exclusive_group(required=True)
    task.add_argument("--classes", nargs="+", help="class names: zero-shot classification")
    task.add_argument("--captions", nargs="+", help="captions: image-text cosine similarities")
    p.add_argument("--templates", nargs="+", default=None, help="prompt templates with '{}' (default: 'a photo of a {}.')")
    p.add_argument("--top-k", type=int, default=3, help="classes printed per image")
    p.add_argument("--device", default="CPU", help="MindSpore device_target (CPU, Ascend, GPU)")
    return p.parse_args(argv)


def check_args(args):
    """One-line errors naming the flag, before the towers are loaded: None when the flags are good."""
    if args.top_k < 1:
        return f"--top-k must be at least 1, got {args.top_k}"
    for flag, texts in (("--classes", args.classes), ("--captions", args.captions)):
        for i, text in enumerate(texts or []):
            if not text.strip():
                return f"{flag}: entry {i + 1} of {len(texts)} is empty ({text!r})"
    if args.templates is not None and not args.classes:
        return "--templates is used with --classes only"
    for template in args.templates or []:
        if not is_template(template):
            return (f"--templates: {template!r} must contain exactly one '{{}}' (where the class name goes) "
                    f"and no other replacement field such as '{{0}}' or '{{name}}'")
    return None


def print_zero_shot(images, classnames, result, top_k):
    for path, probs, top in zip(images, result["probs"], result["top"]):
        ranked = ", ".join(f"{classnames[i]} {probs[i]:.3f}" for i in top[:top_k])
        print(f"{path}: {classnames[top[0]]}  ({ranked})")


def print_similarity(images, captions, similarity):
    for path, row in zip(images, similarity):
        print(f"{path}:")
        for caption, value in zip(captions, row):
            print(f"  {value:+.4f}  {caption}")


def main(argv=None):
    args = parse_args(argv)
    problem = check_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    import mindspore as ms

    from mindclip.export import ExportedCLIP, ImageReadError, SidecarError, TextTooLongError

    ms.set_context(mode=ms.GRAPH_MODE, device_target=args.device)
    try:
        clip = ExportedCLIP(args.export)
        if args.classes:
            result = clip.zero_shot(args.images, args.classes, args.templates, args.top_k)
            print_zero_shot(args.images, args.classes, result, args.top_k)
        else:
            print_similarity(args.images, args.captions, clip.similarity(args.images, args.captions))
    except (SidecarError, ImageReadError, TextTooLongError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
