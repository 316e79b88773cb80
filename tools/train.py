"""Train CLIP / LightCLIP / PyramidCLIP from a recipe in ascend_configs/.

    python tools/train.py -c ascend_configs/demo_cpu.yaml
    python tools/train.py -c ascend_configs/lightclip_mobilenetv2.yaml --set train.device_target=Ascend
    msrun --worker_num=8 --local_worker_num=8 tools/train.py -c ascend_configs/lightclip_resnet18.yaml \
        --set train.device_target=Ascend
    python tools/train.py -c ... --resume auto        # continue from the newest good checkpoint
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the oneDNN ISA cap before mindspore loads)
from mindclip.config import ConfigError  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-c", "--config", required=True, help="YAML run recipe")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set optim.lr=1e-3 (repeatable)")
    parser.add_argument("--resume", default=None, help="'auto' (newest good checkpoint of the run) or a path")
    parser.add_argument("--max-steps-this-run", type=int, default=None,
                        help="stop after this many optimizer steps (the schedule still spans the whole run)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mindclip.train import load_run_config, Trainer

    try:
        cfg = load_run_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    trainer = Trainer(cfg, resume=args.resume)
    summary = trainer.run(stop_after=args.max_steps_this_run)
    last = summary["last"]
    if last is not None and trainer.is_main:
        print(f"done: {summary['steps']} steps, final loss {last['loss']:.4f}, "
              f"{summary['skipped_steps']} skipped, checkpoint {summary['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
