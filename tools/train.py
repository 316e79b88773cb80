"""Train CLIP / LightCLIP / PyramidCLIP from a recipe in ascend_configs/.

    python tools/train.py -c ascend_configs/demo_cpu.yaml
    python tools/train.py -c ascend_configs/lightclip_mobilenetv2.yaml --set train.device_target=Ascend
    msrun --worker_num=8 --local_worker_num=8 tools/train.py -c ascend_configs/lightclip_resnet18.yaml \
        --set train.device_target=Ascend
    python tools/train.py -c ... --resume auto        # continue from the newest good checkpoint
    python tools/train.py -c ... --overwrite          # start again in a directory holding a run

Exit status: 0 trained; 1 the run failed (e.g. too many consecutive skipped steps); 2 bad input
(a key, file or flag, named in one line on stderr), refused before training.
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
    parser.add_argument("--resume-allow", default="", metavar="KEY,...",
                        help="config keys that may differ from the resumed run's (recorded in the log)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete the run already in train.output_dir and start again")
    parser.add_argument("--max-steps-this-run", type=int, default=None,
                        help="stop after this many optimizer steps and save a checkpoint there "
                             "(the schedule still spans the whole run)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mindclip.models.integrity import CheckpointError
    from mindclip.train import RunError, RunFailed, Trainer, load_run_config
    from mindclip.train.resume_check import parse_allow

    try:
        cfg = load_run_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    try:
        if args.max_steps_this_run is not None and args.max_steps_this_run < 1:
            raise RunError(f"--max-steps-this-run must be >= 1, got {args.max_steps_this_run}")
        if args.resume_allow and not args.resume:
            raise RunError("--resume-allow applies only with --resume")
        trainer = Trainer(cfg, resume=args.resume, overwrite=args.overwrite,
                          resume_allow=parse_allow(args.resume_allow, cfg))
        try:
            summary = trainer.run(stop_after=args.max_steps_this_run)
        finally:
            trainer.close()
    except (RunError, ConfigError, CheckpointError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RunFailed as e:
        print(f"error: the run failed: {e}", file=sys.stderr)
        return 1
    last = summary["last"]
    if trainer.is_main:
        loss = f"final loss {last['loss']:.4f}, " if last is not None else "no step to run, "
        print(f"done: {summary['steps']} steps, {loss}{summary['skipped_steps']} skipped, "
              f"checkpoint {summary['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
