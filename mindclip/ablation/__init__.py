"""Ablations: a paper's table of rows run as (row x seed) trainings, evaluated and summarised.

    from mindclip.ablation import load_table, plan_sweep, parse_eval, Launcher, run_sweep, write_reports
    table = load_table("lightclip-table4")                  # rows as data (tables/*.yaml)
    specs = plan_sweep(table, "ascend_configs/demo_cpu.yaml", seeds=[0, 1, 2], out_dir="runs/abl")
    evals = [parse_eval("zeroshot --dataset demo --root demo_out/data")]
    results = run_sweep(specs, Launcher("tools/train.py", "tools/eval.py"), evals)
    write_reports("runs/abl", table, specs, results, report_metrics(evals), context)

Modules: `tables` (the row files), `plan` (row x seed -> checked RunSpecs), `launch` (command lines,
msrun, child processes), `sweep` (resumable runs and their result files), `aggregate` (mean, std,
delta), `report` (ablation.json / .md / .png). `tools/ablate.py` is the command line.

Depends on `config`, `train.config` (to check each row's resolved config), `eval.results` (result
file names) and `viz.bars`; training and evaluation run as child processes of the tools.
"""
from mindclip.ablation.aggregate import aggregate, seed_statistics
from mindclip.ablation.launch import Launcher
from mindclip.ablation.plan import RunSpec, parse_seeds, plan_sweep
from mindclip.ablation.report import report_metrics, write_reports
from mindclip.ablation.sweep import EvalSpec, parse_eval, read_run_result, run_sweep
from mindclip.ablation.tables import AblationRow, AblationTable, list_tables, load_table

__all__ = ["aggregate", "seed_statistics", "Launcher", "RunSpec", "parse_seeds", "plan_sweep", "report_metrics",
           "write_reports", "EvalSpec", "parse_eval", "read_run_result", "run_sweep", "AblationRow",
           "AblationTable", "list_tables", "load_table"]
