"""Ablation rows as data: the shipped tables say what the papers' rows are, whatever the recipe's
defaults; user tables are checked with errors that name the file and line; the plan refuses
overrides that would be lost."""
import os

import pytest
import yaml

from mindclip.ablation import list_tables, load_table, plan_sweep
from mindclip.ablation.plan import parse_seeds
from mindclip.ablation.tables import format_value, override_args
from mindclip.config import ConfigError, parse_override

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = os.path.join(ROOT, "ascend_configs")

# LightCLIP Table 4, written out from the paper independently of the YAML: which parts are on.
# soft labels on = r1 0.33, r2 0.66 (off = one-hot: r1 = r2 = 1); token / MLM on = weight 0.1.
TABLE4 = {  # id: (soft labels, token alignment, MLM, mlm_attention)
    "clip": (False, False, False, "causal"),
    "soft": (True, False, False, "causal"),
    "token": (False, True, False, "causal"),
    "mlm": (False, False, True, "causal"),
    "all": (True, True, True, "causal"),
    "all_bidirectional": (True, True, True, "bidirectional"),
}


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)


def test_shipped_tables_are_listed_and_load():
    assert {"lightclip-table4", "pyramidclip-table6", "pyramidclip-table6-vit"} <= set(list_tables())
    for name in list_tables():
        table = load_table(name)
        assert table.rows and table.name == name and table.common == {"train.epochs": 8}


@pytest.mark.parametrize("recipe_loss", [
    None,  # no loss section: the method's implied defaults
    {},  # the demo recipe as it is (method-implied: 0.8 / 0.1 / 0.1, r1 0.33, r2 0.66)
    {"inst_weight": 1.0, "token_weight": 0.0, "mlm_weight": 0.0, "r1": 1.0, "r2": 1.0,  # CLIP-like defaults
     "delta": 0.5, "mlm_attention": "bidirectional"},
])
def test_lightclip_rows_mean_the_same_whatever_the_recipe_says(tmp_path, recipe_loss):
    recipe = yaml.safe_load(open(os.path.join(RECIPES, "demo_cpu.yaml"), encoding="utf-8"))
    if recipe_loss is None:
        del recipe["loss"]
    else:
        recipe["loss"].update(recipe_loss)
    path = write(tmp_path / "recipe.yaml", yaml.safe_dump(recipe))
    table = load_table("lightclip-table4")
    assert [row.id for row in table.rows] == list(TABLE4)

    specs = plan_sweep(table, path, [0], tmp_path / "out")

    for spec in specs:
        soft, token, mlm, attention = TABLE4[spec.row.id]
        cfg = spec.config
        assert cfg["method"] == "lightclip" and cfg["train"]["epochs"] == 8
        loss = cfg["loss"]
        assert (loss["r1"], loss["r2"]) == ((0.33, 0.66) if soft else (1.0, 1.0)), spec.row.id
        assert loss["token_weight"] == (0.1 if token else 0.0) and loss["mlm_weight"] == (0.1 if mlm else 0.0)
        assert loss["inst_weight"] == 0.8 and loss["delta"] == 0.2 and loss["mlm_attention"] == attention
        marks = ("soft labels" in spec.row.components, "token alignment" in spec.row.components,
                 "MLM" in spec.row.components)
        assert marks == (soft, token, mlm)


def test_pyramid_tables_resolve_against_their_recipes(tmp_path):
    for name, recipe in (("pyramidclip-table6", "pyramidclip_rn50.yaml"),
                         ("pyramidclip-table6-vit", "pyramidclip_vit_b16.yaml")):
        table = load_table(name)
        specs = {s.row.id: s for s in plan_sweep(table, os.path.join(RECIPES, recipe), [0], tmp_path / name)}
        assert specs["clip"].config["method"] == "clip" and specs["clip"].config["data"]["crop_scale"] == [0.9, 1.0]
        assert specs["lt"].config["data"]["crop_scale"] == [0.5, 1.0]
        assert specs["lt_gs"].config["loss"]["pyramid_weights"] == [0.5, 0.5, 0.0, 0.0]
        assert specs["soften"].config["loss"]["pyramid_alpha"] == 0.2
        unsoftened = [s for i, s in specs.items() if i not in ("clip", "lt", "soften")]
        assert all(s.config["loss"]["pyramid_alpha"] == 0.0 for s in unsoftened)
    vit = {s.row.id: s for s in plan_sweep(load_table("pyramidclip-table6-vit"),
                                          os.path.join(RECIPES, "pyramidclip_vit_b16.yaml"), [0], tmp_path / "v")}
    assert vit["lt_gs"].model_overrides == ("image.tower.leff=false",)  # passed on to tools/eval.py
    assert vit["leff"].model_overrides == ("image.tower.leff=true",)
    with pytest.raises(ConfigError, match=r"pyramidclip-table6-vit.yaml:\d+.*unknown key 'image.tower.leff'"):
        plan_sweep(load_table("pyramidclip-table6-vit"), os.path.join(RECIPES, "pyramidclip_rn50.yaml"), [0], tmp_path)


def test_user_table_and_sweep_folders(tmp_path):
    path = write(tmp_path / "rows.yaml", "rows:\n  - name: Base run\n    overrides: {}\n"
                 "  - name: lower lr\n    overrides: {optim.lr: 1.0e-4, loss.mlm_attention: bidirectional}\n")
    table = load_table(path)
    assert [r.id for r in table.rows] == ["base_run", "lower_lr"] and table.name == "rows"
    specs = plan_sweep(table, os.path.join(RECIPES, "demo_cpu.yaml"), [3, 5], tmp_path / "out")
    assert [(s.row.id, s.seed) for s in specs] == [("base_run", 3), ("base_run", 5), ("lower_lr", 3), ("lower_lr", 5)]
    assert specs[3].run_dir == os.path.join(str(tmp_path / "out"), "runs", "lower_lr", "seed5")
    assert specs[3].config["train"]["seed"] == 5 and specs[3].config["optim"]["lr"] == 1e-4
    assert specs[3].config["train"]["output_dir"] == os.path.join(specs[3].run_dir, "train")
    # the command line's --set wins over `common`, and the rows over both
    specs = plan_sweep(load_table("lightclip-table4"), os.path.join(RECIPES, "demo_cpu.yaml"), [0], tmp_path / "o2",
                       ["train.epochs=2"], ["mlm"])
    assert [s.row.id for s in specs] == ["clip", "mlm"]  # the first row is always kept (the reference)
    assert specs[1].config["train"]["epochs"] == 2


@pytest.mark.parametrize("text, message", [
    ("rows:\n  - name: a\n    overides: {}\n", r"rows.yaml:3: unknown row key 'overides'"),
    ("rows:\n  - name: a\n    overrides: {}\n  - name: a\n    overrides: {}\n",
     r"rows.yaml:4: row id 'a' is used twice \(first at line 2\)"),
    ("rows:\n  - name: a\n    overrides: {loss.r1: 1.0, loss.r1: 0.5}\n", r"rows.yaml:3: duplicate key 'loss.r1'"),
    ("rows:\n  - name: a\n", r"rows.yaml:2: row 'a' lacks 'overrides'"),
    ("components: [x]\nrows:\n  - name: a\n    components: [y]\n    overrides: {}\n",
     r"rows.yaml:4: row 'a' marks 'y', not one of the table's components \['x'\]"),
    ("rows: []\n", r"rows.yaml:1: 'rows' must be a non-empty list"),
    ("titel: x\nrows: []\n", r"rows.yaml:1: unknown table key 'titel'"),
])
def test_bad_user_tables_are_refused_with_file_and_line(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_table(write(tmp_path / "rows.yaml", text))


def test_bad_overrides_are_refused_before_anything_runs(tmp_path):
    recipe = os.path.join(RECIPES, "demo_cpu.yaml")
    table = load_table("lightclip-table4")
    with pytest.raises(ConfigError, match=r"--set loss.r1: row 'CLIP' \(lightclip-table4.yaml:\d+\) sets loss.r1"):
        plan_sweep(table, recipe, [0], tmp_path, ["loss.r1=0.5"])
    with pytest.raises(ConfigError, match="--set loss: row 'CLIP'"):
        plan_sweep(table, recipe, [0], tmp_path, ["loss={}"])  # a section holding a row's key
    with pytest.raises(ConfigError, match="the sweep sets train.seed"):
        plan_sweep(table, recipe, [0], tmp_path, ["train.seed=3"])
    bad = write(tmp_path / "rows.yaml", "rows:\n  - name: a\n    overrides: {loss.r3: 1.0}\n")
    with pytest.raises(ConfigError, match=r"row 'a' \(rows.yaml:2\):.*unknown key 'loss.r3'"):
        plan_sweep(load_table(bad), recipe, [0], tmp_path)
    with pytest.raises(ConfigError, match="--rows: no row 'nope'"):
        plan_sweep(table, recipe, [0], tmp_path, (), ["nope"])
    with pytest.raises(ConfigError, match="--seeds must be distinct"):
        parse_seeds("0,0")
    with pytest.raises(ConfigError, match="neither a file nor a shipped table"):
        load_table("lightclip-table5")


@pytest.mark.parametrize("value", [1.0, 0.33, 0, True, False, "causal", "1.0", [0.9, 1.0], [0.5, 0.5, 0.0, 0.0],
                                   "demo_out/data/mindrecord/train-*.mindrecord", "", None, "a: b"])
def test_override_values_survive_the_command_line(value):
    (text,) = override_args({"x.y": value})
    assert parse_override(text) == ("x.y", value), format_value(value)
