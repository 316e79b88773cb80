"""Run an ablation table: every row x seed trained, evaluated and summarised (docs/training.md, "Ablations").

    python tools/ablate.py -c ascend_configs/demo_cpu.yaml --table lightclip-table4 --seeds 0,1,2 \
        --eval "zeroshot --dataset demo --root demo_out/data" \
        --eval "retrieval --dataset demo --root demo_out/data" \
        --set train.epochs=2 --out runs/ablation_demo
    python tools/ablate.py -c ascend_configs/lightclip_mobilenetv2.yaml --table lightclip-table4 \
        --seeds 0,1,2 --launcher msrun --cards 8 --set train.device_target=Ascend \
        --eval "zeroshot --dataset imagenet1k --root /data/imagenet/val --device Ascend" --out runs/table4
    python tools/ablate.py --list-tables

Each --eval is a task followed by tools/eval.py's dataset arguments. Run the same command again to
resume: finished runs are skipped, an interrupted run continues from its checkpoints. Outputs in
--out: runs/<row>/seed<S>/ (config, logs, checkpoints, eval JSON, result.json), ablation.json,
ablation.md, ablation.png.

Exit status: 0 every run done; 1 some run failed (it is shown as failed in the report); 2 bad input
(named in one line on stderr), refused before anything runs.
"""
import argparse
import contextlib
import importlib.util
import io
import os
import shlex
import sys

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(TOOLS))

import mindclip  # noqa: E402,F401  (sets the oneDNN ISA cap before mindspore loads)
from mindclip.config import ConfigError  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--config", help="YAML run recipe every row overrides")
    p.add_argument("--table", help="a shipped table (--list-tables) or a YAML file of rows")
    p.add_argument("--seeds", default="0", help="comma-separated train.seed values (default: 0)")
    p.add_argument("--eval", dest="evals", action="append", default=[], metavar="'TASK ARGS'",
                   help="an evaluation of every run: zeroshot|retrieval then tools/eval.py's dataset "
                        "arguments, e.g. 'zeroshot --dataset demo --root demo_out/data' (repeatable)")
    p.add_argument("--out", help="sweep folder (runs, reports); the same folder resumes")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override of every row (applied before the row's own; a key a row sets is refused)")
    p.add_argument("--rows", default="", help="comma-separated row ids to run (default: all; the first row is "
                                              "always run: it is the reference of the deltas)")
    p.add_argument("--metrics", default="", help="comma-separated metric keys of the table and chart "
                                                 "(default: acc1,acc5 / image_ and text_retrieval_recall@1,@5)")
    p.add_argument("--launcher", default="local", choices=("local", "msrun"))
    p.add_argument("--cards", type=int, default=1, help="msrun workers per run")
    p.add_argument("--master-port", type=int, default=8118, help="msrun port of the first run (run i: +i)")
    p.add_argument("--retry-failed", action="store_true", help="run again the runs that failed before")
    p.add_argument("--dry-run", action="store_true", help="check everything and print the commands; run nothing")
    p.add_argument("--list-tables", action="store_true", help="print the shipped tables and exit")
    return p.parse_args(argv)


def check_eval_arguments(evals):
    """Each --eval must parse with tools/eval.py's own parser, and its paths must exist."""
    spec = importlib.util.spec_from_file_location("mindclip_tool_eval", os.path.join(TOOLS, "eval.py"))
    eval_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eval_tool)
    for e in evals:
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                parsed = eval_tool.parse_args(["--model", "x"] + list(e.args))
        except SystemExit:
            reason = stderr.getvalue().strip().splitlines()[-1:] or ["invalid arguments"]
            raise ConfigError(f"--eval '{' '.join(e.args[1:])}': {reason[0]}") from None
        for flag, path in (("--root", parsed.root), ("--annotations", parsed.annotations),
                           ("--classnames", parsed.classnames), ("--templates", parsed.templates)):
            if path and not os.path.exists(path):
                raise ConfigError(f"--eval '{' '.join(e.args[1:])}': {flag} {path} does not exist")


def prepare(args):
    """(table, specs, evals, launcher, metrics) from the arguments; ConfigError/ValueError on bad input."""
    from mindclip.ablation import Launcher, load_table, parse_eval, parse_seeds, plan_sweep, report_metrics
    from mindclip.ablation.sweep import check_evals, check_sweep

    missing = [flag for flag, value in (("-c/--config", args.config), ("--table", args.table), ("--out", args.out))
               if not value]
    if missing:
        raise ConfigError(f"{missing[0]} is required (see --help)")
    if not args.evals:
        raise ConfigError("give at least one --eval (e.g. --eval 'zeroshot --dataset demo --root demo_out/data')")
    evals = [parse_eval(text) for text in args.evals]
    check_evals(evals)
    check_eval_arguments(evals)
    table = load_table(args.table)
    rows = [r for r in args.rows.split(",") if r.strip()]
    specs = plan_sweep(table, args.config, parse_seeds(args.seeds), args.out, args.overrides, rows)
    launcher = Launcher(os.path.join(TOOLS, "train.py"), os.path.join(TOOLS, "eval.py"), kind=args.launcher,
                        cards=args.cards, master_port=args.master_port)
    check_sweep(specs, launcher, evals)
    metrics = report_metrics(evals, [m for m in args.metrics.split(",") if m.strip()] or None)
    return table, specs, evals, launcher, metrics


def main(argv=None):
    args = parse_args(argv)
    from mindclip.ablation import list_tables, run_sweep, write_reports

    if args.list_tables:
        print("\n".join(list_tables()))
        return 0
    try:
        table, specs, evals, launcher, metrics = prepare(args)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{table.name}: {len(specs)} runs ({len(specs) // len(set(s.seed for s in specs))} rows x "
          f"{len(set(s.seed for s in specs))} seeds) in {os.path.abspath(args.out)}")
    if args.dry_run:
        for index, spec in enumerate(specs):
            print(f"[{spec.label}] {shlex.join(launcher.train_argv(spec, index))}")
            for e in evals:
                print(f"[{spec.label}] {shlex.join(launcher.eval_argv(spec, e))}")
        return 0
    context = {"recipe": args.config, "seeds": sorted(set(s.seed for s in specs)), "common": table.common,
               "user_overrides": args.overrides, "evals": [" ".join(e.args) for e in evals],
               "launcher": args.launcher if args.launcher == "local" else f"msrun, {args.cards} cards",
               "command": "python tools/ablate.py " + shlex.join(sys.argv[1:] if argv is None else argv)}

    def report(results):
        write_reports(args.out, table, specs, results, metrics, context)

    results = run_sweep(specs, launcher, evals, retry_failed=args.retry_failed, after_each=report)
    paths = write_reports(args.out, table, specs, results, metrics, context)
    failed = sum(1 for r in results if r["status"] == "failed")
    print(f"{len(results) - failed} of {len(results)} runs done, {failed} failed; wrote {paths['md']}, "
          f"{paths['json']}, {paths['png']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
