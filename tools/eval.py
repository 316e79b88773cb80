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
    python tools/eval.py ... --task zeroshot --dataset my_set --root /data/my_set/test  # folder names = classes
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
from mindclip.eval import results  # noqa: E402
from mindclip.eval.eval_set import LAYOUTS, load_eval_set  # noqa: E402
from mindclip.eval.prompts import list_zero_shot_datasets  # noqa: E402
from tools._model_flags import add_model_flags  # noqa: E402

PREPROCESS = "resize shorter side to image_size (bicubic), center crop, CLIP mean/std (mindclip.data.transforms)"
TIE_RULE = "pessimistic: wrong candidates scoring >= the best correct one rank ahead of it"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_flags(p)
    p.add_argument("--task", required=True, choices=results.TASKS)
    p.add_argument("--dataset", required=True,
                   help=f"dataset name for the result file and the shipped prompts ({', '.join(list_zero_shot_datasets())}); "
                        "'demo' for the demo data folder")
    p.add_argument("--root", required=True, help="dataset folder or file (see --layout)")
    p.add_argument("--layout", default="auto", choices=LAYOUTS,
                   help="auto: demo for --dataset demo, cifar for cifar10/100, karpathy with --annotations, "
                        "csv for a .csv/.tsv root, else imagefolder (mindclip.eval.eval_set)")
    p.add_argument("--annotations", default=None, help="Karpathy-split JSON (retrieval); images under --root")
    p.add_argument("--split", default="test", help="split of a Karpathy JSON or CIFAR (default: test)")
    p.add_argument("--classnames", default=None,
                   help="class-name file (.txt lines or .json) instead of the shipped list; an ImageFolder "
                        "without one uses its folder names; names equal to the folder names match by name")
    p.add_argument("--templates", default=None, help="template file (.txt lines or .json list)")
    p.add_argument("--batch-size", type=int, default=256, help="images/texts per compiled call (fixed)")
    p.add_argument("--workers", type=int, default=2, help="threads decoding images")
    p.add_argument("--device", default=None, choices=("CPU", "GPU", "Ascend"), help="default: MindSpore's")
    p.add_argument("--output-dir", default="results", help="where result JSON files go")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p.parse_args(argv)


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

    eval_set = load_eval_set(args.task, args.root, args.dataset, args.layout, args.annotations, args.split,
                             args.classnames, args.templates)
    for note in eval_set.notes:
        print(f"note: {note}", file=sys.stderr)
    layout, prompts, data = eval_set.layout, eval_set.prompts, eval_set.data
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
                        num_templates=len(prompts.templates), class_order=eval_set.class_order,
                        notes=eval_set.notes)
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
