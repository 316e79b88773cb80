"""Draw the pictures of a run (see docs/visualisation.md): token alignment, training curves, embeddings.

    # which patches each word is matched to (LightCLIP Fig. 3)
    python tools/visualize.py align --model tiny_resnet18 --checkpoint demo_out/run/last.ckpt \
        --image demo_out/data/images/val/green_cross/000010.jpg --caption "a large green cross on the left" \
        --out demo_out/align.png
    # every loss part, lr, logit_scale and images/s of one or more runs, overlaid
    python tools/visualize.py curves demo_out/run runs/clip/train_log.jsonl --labels lightclip clip \
        --out demo_out/curves.png
    # image embeddings of a labelled set in 2-D (PCA and t-SNE), coloured by class (LightCLIP Fig. 4)
    python tools/visualize.py embed --model tiny_resnet18 --checkpoint demo_out/run/last.ckpt \
        --dataset demo --root demo_out/data --out demo_out/embed.png

Preset changes go through --set KEY=VALUE as in tools/eval.py (the text table's size is taken from
the checkpoint). `main(argv)` returns the exit status (2 for bad input, with the reason on stderr);
`run(argv)` returns what it drew (alignment maps, run logs, embeddings) and raises on bad input.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402  (sets the oneDNN ISA cap before mindspore loads)
from mindclip.eval.eval_set import CLASSIFICATION_LAYOUTS  # noqa: E402
from tools._model_flags import add_model_flags  # noqa: E402


def _model_arguments(p):
    add_model_flags(p, "image.image_size=128")
    p.add_argument("--device", default=None, choices=("CPU", "GPU", "Ascend"), help="default: MindSpore's")


def _add_align(commands):
    align = commands.add_parser("align", help="word-to-patch alignment maps of one image and caption")
    _model_arguments(align)
    align.add_argument("--image", required=True, help="image file")
    align.add_argument("--caption", required=True, help="caption (its words become the panels)")
    align.add_argument("--words", nargs="+", default=None, help="only these words of the caption")
    align.add_argument("--panel-size", type=int, default=160, help="panel side in pixels")
    align.add_argument("--columns", type=int, default=6, help="panels per row")
    align.add_argument("--out", required=True, help="PNG to write")


def _add_curves(commands):
    curves = commands.add_parser("curves", help="training curves of one or more runs")
    curves.add_argument("logs", nargs="+", help="train_log.jsonl files or run output folders")
    curves.add_argument("--labels", nargs="+", default=None, help="legend label of each run (default: its folder)")
    curves.add_argument("--columns", type=int, default=3, help="panels per row")
    curves.add_argument("--out", required=True, help="PNG to write")


def _add_embed(commands):
    embed = commands.add_parser("embed", help="2-D map of the image embeddings of a labelled set")
    _model_arguments(embed)
    embed.add_argument("--dataset", default=None,
                       help="'demo' for the demo data folder, or a shipped class-name set "
                            "(imagenet1k, cifar10, pets...)")
    embed.add_argument("--root", required=True, help="demo folder, ImageFolder root, CSV/TSV, or CIFAR folder")
    embed.add_argument("--layout", default="auto", choices=("auto",) + CLASSIFICATION_LAYOUTS,
                       help="auto: demo for --dataset demo, cifar for cifar10/100, csv for a .csv/.tsv root, "
                            "else imagefolder (read by mindclip.eval.load_eval_set, as tools/eval.py)")
    embed.add_argument("--classnames", default=None,
                       help="class-name file (.txt lines or .json) instead of --dataset's; an ImageFolder "
                            "without one uses its folder names")
    embed.add_argument("--split", default="test", help="CIFAR split")
    embed.add_argument("--classes", nargs="+", default=None, help="only these classes (names)")
    embed.add_argument("--max-per-class", type=int, default=None, help="at most this many images per class")
    embed.add_argument("--method", default="both", choices=("both", "pca", "tsne"))
    embed.add_argument("--perplexity", type=float, default=30.0, help="t-SNE perplexity (lowered to (N-1)/3 if needed)")
    embed.add_argument("--iterations", type=int, default=750, help="t-SNE iterations")
    embed.add_argument("--batch-size", type=int, default=64, help="images per compiled call")
    embed.add_argument("--title", default=None, help="figure title (default: model and checkpoint)")
    embed.add_argument("--out", required=True, help="PNG to write")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_align(commands)
    _add_curves(commands)
    _add_embed(commands)
    return parser.parse_args(argv)


def _build_model(args):
    import mindspore as ms

    from mindclip.config import parse_override
    from mindclip.viz.alignment import load_alignment_model

    ms.set_context(mode=ms.GRAPH_MODE, **({"device_target": args.device} if args.device else {}))
    overrides = dict(parse_override(text) for text in args.overrides)
    return load_alignment_model(args.model, args.checkpoint, **overrides)


def _save(figure, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.save(path)
    print(f"wrote {path} ({figure.size[0]}x{figure.size[1]})")


def run_align(args):
    from PIL import Image

    from mindclip.viz import alignment

    if not os.path.isfile(args.image):
        raise FileNotFoundError(f"image not found: {args.image}")
    model, token_proj = _build_model(args)
    with Image.open(args.image) as opened:
        image = opened.convert("RGB")
    maps = alignment.compute_alignment(model, image, args.caption, mindclip.Tokenizer(), token_proj, args.words)
    figure, _ = alignment.render_alignment(image, maps, args.panel_size, args.columns)
    _save(figure, args.out)
    return maps


def run_curves(args):
    from mindclip.viz import curves

    if args.labels and len(args.labels) != len(args.logs):
        raise ValueError(f"{len(args.labels)} labels for {len(args.logs)} logs")
    labels = args.labels or [None] * len(args.logs)
    runs = [curves.load_run(path, label) for path, label in zip(args.logs, labels)]
    figure, _ = curves.plot_runs(runs, args.columns)
    _save(figure, args.out)
    return runs


def run_embed(args):
    import numpy as np

    from mindclip.eval import ClipEncoders, load_eval_set
    from mindclip.viz import embedding

    eval_set = load_eval_set("zeroshot", args.root, args.dataset, args.layout, split=args.split,
                             classnames_file=args.classnames)
    for note in eval_set.notes:
        print(f"note: {note}", file=sys.stderr)
    data, classnames = eval_set.data, eval_set.classnames
    embedding.check_labels(data.labels, classnames, source=data.source)
    keep = np.arange(len(data.labels))
    if args.classes:
        keep = embedding.select_classes(data.labels, classnames, args.classes)
    if args.max_per_class:
        keep = keep[embedding.limit_per_class(data.labels[keep], args.max_per_class)]
    model, _ = _build_model(args)
    images = _Subset(data.images, keep)
    features = ClipEncoders(model, batch_size=args.batch_size).encode_images(images, progress=False)  # (N, E)
    labels = data.labels[keep]
    panels = []
    if args.method in ("both", "pca"):
        coords, explained = embedding.pca(features)
        panels.append((f"PCA (PC1 {explained[0]:.0%}, PC2 {explained[1]:.0%} of variance)", coords))
    if args.method in ("both", "tsne"):
        perplexity = min(args.perplexity, (len(features) - 1) / 3)
        panels.append((f"t-SNE (perplexity {perplexity:.0f})",
                       embedding.tsne(features, perplexity=perplexity, iterations=args.iterations)))
    title = args.title or f"{args.model} {os.path.basename(args.checkpoint or 'random weights')}: " \
                          f"{len(labels)} images of {data.source}"
    figure, _ = embedding.render_embedding(panels, labels, classnames, title)
    _save(figure, args.out)
    return features, labels, panels


class _Subset:
    """`images[keep[i]]`: the chosen items of a lazy image collection."""

    def __init__(self, images, keep):
        self.images, self.keep = images, keep

    def __len__(self):
        return len(self.keep)

    def __getitem__(self, index):
        return self.images[int(self.keep[index])]


COMMANDS = {"align": run_align, "curves": run_curves, "embed": run_embed}


def run(argv=None):
    """Draw and write the picture; return what was drawn (AlignmentMaps / [RunLog] /
    (features, labels, projections)). Bad input raises ValueError or FileNotFoundError."""
    args = parse_args(argv)
    return COMMANDS[args.command](args)


def main(argv=None):
    """Exit status: 0, or 2 with the error on stderr for bad input (a file, a word, a label...)."""
    try:
        run(argv)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
