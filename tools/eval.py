"""Evaluate a CLIP checkpoint: zero-shot classification or image-text retrieval (see docs/evaluation.md).

    # zero-shot on the demo's held-out images, and retrieval on their captions
    python tools/eval.py --model tiny_resnet18 --checkpoint runs/demo/last.ckpt \
        --task zeroshot --dataset demo --root demo_out/data
    python tools/eval.py --model tiny_resnet18 --checkpoint runs/demo/last.ckpt \
        --task retrieval --dataset demo --root demo_out/data
    # the paper's datasets
    python tools/eval.py --model lightclip_resnet18 --checkpoint ck.ckpt --task zeroshot \
        --dataset imagenet1k --root /data/imagenet/val                  # ImageFolder of wnid folders
    python tools/eval.py ... --task zeroshot --dataset cifar100 --root /data/cifar-100-python
    python tools/eval.py ... --task zeroshot --dataset pets --root /data/pets_test.csv   # image,label CSV
    python tools/eval.py ... --task retrieval --dataset coco --root /data/coco \
        --annotations /data/dataset_coco.json                          # Karpathy split, 5k test images

Without --checkpoint the model has random weights (a smoke test). Writes one JSON per
(model, dataset, task) in --output-dir and prints a table.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402  (sets the oneDNN ISA cap before mindspore loads)
from mindclip.eval import datasets, results  # noqa: E402
from mindclip.eval.prompts import (list_zero_shot_datasets, load_prompts_file, load_templates_file,  # noqa: E402
                                   load_zero_shot_prompts)

LAYOUTS = ("auto", "imagefolder", "cifar", "csv", "karpathy", "demo")
PREPROCESS = "resize shorter side to image_size (bicubic), center crop, CLIP mean/std (mindclip.data.transforms)"
TIE_RULE = "pessimistic: wrong candidates scoring >= the best correct one rank ahead of it"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model preset (mindclip.list_models())")
    p.add_argument("--checkpoint", default=None, help="model or training checkpoint; none = random weights")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="model preset override, e.g. --set image.image_size=224 (repeatable)")
    p.add_argument("--task", required=True, choices=results.TASKS)
    p.add_argument("--dataset", required=True,
                   help=f"dataset name for the result file and the shipped prompts ({', '.join(list_zero_shot_datasets())}); "
                        "'demo' for the demo data folder")
    p.add_argument("--root", required=True, help="dataset folder or file (see --layout)")
    p.add_argument("--layout", default="auto", choices=LAYOUTS,
                   help="auto: demo for --dataset demo, cifar for cifar10/100, karpathy with --annotations, "
                        "csv for a .csv/.tsv root, else imagefolder")
    p.add_argument("--annotations", default=None, help="Karpathy-split JSON (retrieval); images under --root")
    p.add_argument("--split", default="test", help="split of a Karpathy JSON or CIFAR (default: test)")
    p.add_argument("--classnames", default=None, help="class-name file (.txt lines or .json) instead of the shipped list")
    p.add_argument("--templates", default=None, help="template file (.txt lines or .json list)")
    p.add_argument("--batch-size", type=int, default=256, help="images/texts per compiled call (fixed)")
    p.add_argument("--workers", type=int, default=2, help="threads decoding images")
    p.add_argument("--device", default=None, choices=("CPU", "GPU", "Ascend"), help="default: MindSpore's")
    p.add_argument("--output-dir", default="results", help="where result JSON files go")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


def resolve_layout(args):
    """The reader to use for --root (see --layout)."""
    if args.layout != "auto":
        return args.layout
    if args.dataset == "demo":
        return "demo"
    if args.task == "retrieval":
        return "karpathy" if args.annotations else "csv"
    if args.dataset in ("cifar10", "cifar100"):
        return "cifar"
    return "csv" if args.root.lower().endswith((".csv", ".tsv")) else "imagefolder"


def load_prompts(args):
    """Class names and templates: --classnames/--templates, the demo's files, or the shipped lists."""
    if args.classnames:
        return load_prompts_file(args.classnames, args.templates)
    if args.dataset == "demo":
        prompts = load_prompts_file(os.path.join(args.root, datasets.DEMO_CLASSNAMES),
                                    args.templates or os.path.join(args.root, datasets.DEMO_TEMPLATES))
        prompts.name = "demo"
        return prompts
    if args.dataset not in list_zero_shot_datasets():
        raise ValueError(f"no shipped class names for dataset {args.dataset!r}: pass --classnames "
                         f"(shipped: {', '.join(list_zero_shot_datasets())})")
    prompts = load_zero_shot_prompts(args.dataset)
    if args.templates:
        prompts.templates = load_templates_file(args.templates)
    return prompts


def load_classification(args, layout, prompts):
    if layout == "demo":
        return datasets.read_demo_classification(args.root)
    if layout == "cifar":
        if args.dataset not in ("cifar10", "cifar100"):
            raise ValueError(f"--layout cifar needs --dataset cifar10 or cifar100, got {args.dataset!r}")
        return datasets.read_cifar(args.root, args.dataset, args.split)
    if layout == "csv":
        return datasets.read_classification_csv(args.root, num_classes=len(prompts.classnames))
    if layout == "imagefolder":
        return datasets.read_image_folder(args.root, prompts.folder_names)
    raise ValueError(f"layout {layout!r} is not a classification layout (imagefolder, cifar, csv, demo)")


def load_retrieval(args, layout):
    if layout == "demo":
        return datasets.read_demo_retrieval(args.root)
    if layout == "karpathy":
        if not args.annotations:
            raise ValueError("--layout karpathy needs --annotations (dataset_coco.json / dataset_flickr30k.json)")
        return datasets.read_karpathy_json(args.annotations, args.root, args.split)
    if layout == "csv":
        return datasets.read_retrieval_csv(args.root)
    raise ValueError(f"layout {layout!r} is not a retrieval layout (karpathy, csv, demo)")


def build_model(args):
    import mindspore as ms

    from mindclip.config import parse_override

    context = {"mode": ms.GRAPH_MODE}
    if args.device:
        context["device_target"] = args.device
    ms.set_context(**context)
    overrides = dict(parse_override(text) for text in args.overrides)
    return mindclip.create_model(args.model, checkpoint=args.checkpoint, **overrides)


def evaluate(args):
    """Run one evaluation; return the result record (also written to --output-dir)."""
    from mindclip.eval import ClipEncoders, evaluate_retrieval, evaluate_zero_shot

    layout = resolve_layout(args)
    prompts = load_prompts(args) if args.task == "zeroshot" else None
    data = load_classification(args, layout, prompts) if prompts else load_retrieval(args, layout)
    model = build_model(args)
    encoders = ClipEncoders(model, batch_size=args.batch_size, num_workers=args.workers)
    start = time.time()
    if prompts:
        metrics = evaluate_zero_shot(encoders, mindclip.tokenize, data, prompts.classnames, prompts.templates,
                                     progress=not args.no_progress)
    else:
        metrics = evaluate_retrieval(encoders, mindclip.tokenize, data, progress=not args.no_progress)
    seconds = time.time() - start
    settings = {"layout": layout, "root": os.path.abspath(args.root), "split": args.split,
                "annotations": args.annotations and os.path.abspath(args.annotations),
                "model_overrides": args.overrides, "batch_size": args.batch_size,
                "image_size": encoders.image_size, "context_length": encoders.context_length,
                "preprocess": PREPROCESS, "ties": TIE_RULE}
    if prompts:
        settings.update(prompts=prompts.name, classnames_file=args.classnames, templates_file=args.templates,
                        num_templates=len(prompts.templates))
    record = results.make_result(args.model, args.checkpoint, args.dataset, args.task, metrics, settings, seconds)
    record["path"] = results.write_result(args.output_dir, record)
    return record


def main(argv=None):
    args = parse_args(argv)
    try:
        record = evaluate(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(results.format_table([record]), end="")
    print(f"wrote {record['path']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
