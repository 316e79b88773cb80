"""The README's main job on the built-in demo data, end to end, on a CPU:

    make demo data -> train a tiny LightCLIP (full objective) -> zero-shot + retrieval evaluation
    -> MINDIR export (verified) -> inference from the exported files alone -> three pictures

Every step is one of the tools a user runs by hand (printed before it runs), called in-process.
Outputs go under --out (default demo_out/).
"""
import argparse
import glob
import importlib.util
import os
import shlex
import sys
import time

TOOLS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS)
sys.path.insert(0, ROOT)

import mindclip  # noqa: E402,F401  (sets the oneDNN ISA cap before mindspore loads)


def run_tool(name, argv):
    """Run tools/<name>.py's main(argv) in this process; stop the demo if it fails."""
    print(f"\n$ python tools/{name}.py {' '.join(shlex.quote(a) for a in argv)}", flush=True)
    spec = importlib.util.spec_from_file_location(f"mindclip_tool_{name}", os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    status = module.main(argv)
    if status not in (None, 0) and not isinstance(status, dict):
        raise SystemExit(f"demo: tools/{name}.py failed with exit status {status}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out", help="output folder")
    p.add_argument("--config", default=os.path.join(ROOT, "ascend_configs", "demo_cpu.yaml"))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="training recipe override (repeatable)")
    p.add_argument("--skip-pictures", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    data, run, export, pictures = (os.path.join(args.out, d) for d in ("data", "run", "export", "pictures"))
    if not os.path.isfile(os.path.join(data, "mindrecord", "train-summary.json")):
        run_tool("make_demo_data", ["--out", data])
    shards = [f"data.train_shards={data}/mindrecord/train-*.mindrecord",
              f"data.val_shards={data}/mindrecord/val-*.mindrecord", f"train.output_dir={run}"]
    train_argv = ["-c", args.config, "--overwrite"]  # each demo trains from scratch
    for override in shards + args.overrides:
        train_argv += ["--set", override]
    run_tool("train", train_argv)
    checkpoint = os.path.join(run, "last.ckpt")
    model_name = recipe_model(args.config, args.overrides)
    model = ["--model", model_name, "--checkpoint", checkpoint]
    results = os.path.join(args.out, "results")
    run_tool("eval", model + ["--task", "zeroshot", "--dataset", "demo", "--root", data,
                              "--output-dir", results, "--no-progress"])
    run_tool("eval", model + ["--task", "retrieval", "--dataset", "demo", "--root", data,
                              "--output-dir", results, "--no-progress"])
    run_tool("export", model + ["--out", export])
    images = sorted(glob.glob(os.path.join(data, "images", "val", "*", "*.jpg")))[:3]
    with open(os.path.join(data, "classnames.txt"), encoding="utf-8") as f:
        classes = [line.strip() for line in f if line.strip()]
    with open(os.path.join(data, "templates.txt"), encoding="utf-8") as f:
        templates = [line.strip() for line in f if line.strip()]
    run_tool("infer", ["--export", export, "--images", *images, "--classes", *classes,
                       "--templates", *templates, "--top-k", "3"])
    if not args.skip_pictures:
        run_pictures(model_name, checkpoint, run, data, pictures)
    print(f"\ndemo finished in {time.time() - started:.0f} s; everything is under {args.out}/")
    return 0


def recipe_model(config, overrides):
    """The model preset the recipe (with the command line's overrides) trains."""
    from mindclip.config import load_config
    from mindclip.train.config import RunConfig

    return load_config(RunConfig, config, overrides).model.name


def run_pictures(model_name, checkpoint, run, data, pictures):
    """The three pictures of docs/visualisation.md for the demo model."""
    image = os.path.join(data, "images", "val", "green_cross", "000010.jpg")  # seed 0 demo data
    run_tool("visualize", ["align", "--model", model_name, "--checkpoint", checkpoint,
                           "--image", image, "--caption", "a large green cross on the left",
                           "--out", os.path.join(pictures, "alignment.png")])
    run_tool("visualize", ["curves", run, "--labels", "demo LightCLIP", "--out", os.path.join(pictures, "curves.png")])
    run_tool("visualize", ["embed", "--model", model_name, "--checkpoint", checkpoint,
                           "--dataset", "demo", "--root", data, "--out", os.path.join(pictures, "embedding.png")])


if __name__ == "__main__":
    sys.exit(main())
