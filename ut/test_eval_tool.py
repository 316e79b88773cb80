"""tools/eval.py in-process: result files, table, settings and errors (tiny model, random weights)."""
import json
import os

import pytest
from tool_loader import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    from mindclip.data.demo import make_demo_data

    root = tmp_path_factory.mktemp("demo")
    make_demo_data(str(root), n_train=4, n_val=8, image_size=32, seed=2, log=lambda *a, **k: None)
    return str(root)


@pytest.mark.parametrize("task, columns", [("zeroshot", "top1  top5  mean/cls"),
                                            ("retrieval", "i2t R@1  i2t R@5  i2t R@10  t2i R@1")])
def test_eval_tool_writes_one_result_per_task(demo_root, tmp_path, capsys, task, columns):
    tool = load_tool("eval")
    rc = tool.main(["--model", "tiny_resnet18", "--task", task, "--dataset", "demo", "--root", demo_root,
                    "--batch-size", "8", "--output-dir", str(tmp_path), "--no-progress"])
    assert rc == 0
    path = tmp_path / f"tiny_resnet18__demo__{task}.json"
    assert os.listdir(tmp_path) == [path.name]
    result = json.loads(path.read_text())
    assert (result["model"], result["checkpoint"], result["dataset"], result["task"]) == \
        ("tiny_resnet18", None, "demo", task)
    settings = result["settings"]
    assert settings["layout"] == "demo" and settings["batch_size"] == 8 and settings["image_size"] == 64
    if task == "zeroshot":
        metrics = result["metrics"]
        assert metrics["num_samples"] == 8 and metrics["num_classes"] == 36 and settings["num_templates"] == 4
        assert 0 <= metrics["top1"] <= metrics["top5"] <= 1
    else:
        metrics = result["metrics"]
        assert metrics["num_images"] == 8 and metrics["num_texts"] == 40
        assert metrics["image_to_text_R@1"] <= metrics["image_to_text_R@5"] <= metrics["image_to_text_R@10"]
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("model"))
    assert " ".join(header.split()[2:]).startswith(" ".join(columns.split())), header  # widths follow the values
    assert f"wrote {path}" in out
    key = "top1" if task == "zeroshot" else "image_to_text_R@1"
    assert f"{100 * metrics[key]:.2f}" in out


def test_eval_tool_refuses_a_label_csv_without_classnames(tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\nx.jpg,0\n")
    tool = load_tool("eval")
    rc = tool.main(["--model", "tiny_resnet18", "--task", "zeroshot", "--dataset", "mystery",
                    "--root", str(labels), "--output-dir", str(tmp_path / "out")])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"no class names for {labels} (layout csv)" in err and "--classnames" in err
    assert not os.path.exists(tmp_path / "out")


def test_eval_tool_imagefolder_classes_follow_the_folder_names(tmp_path, capsys):
    """Without --classnames the folder names are the classes; a file listing them in another order is
    matched by name (same metrics as the folder names, said on stderr); another count is refused."""
    from PIL import Image

    root = tmp_path / "colours"
    for name, colour in {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 210)}.items():
        os.makedirs(root / name)
        for i in range(2):
            Image.new("RGB", (40 + 8 * i, 40), colour).save(root / name / f"{i}.png")
    import mindclip
    from mindclip.models.weights import save_weights

    checkpoint = str(tmp_path / "model.ckpt")  # one set of random weights for every run
    save_weights(mindclip.create_model("tiny_resnet18"), checkpoint)
    tool = load_tool("eval")

    def run(name, *extra):
        argv = ["--model", "tiny_resnet18", "--checkpoint", checkpoint, "--task", "zeroshot", "--dataset", "colours",
                "--root", str(root), "--batch-size", "8", "--output-dir", str(tmp_path / name), "--no-progress", *extra]
        rc = tool.main(argv)
        path = tmp_path / name / "tiny_resnet18@model__colours__zeroshot.json"
        return rc, capsys.readouterr().err, json.loads(path.read_text()) if path.exists() else None

    rc, err, folders = run("folders")
    assert rc == 0 and "note: class names are the 3 folder names" in err
    assert folders["settings"]["class_order"] == "sorted folder names"
    shuffled = tmp_path / "names.txt"
    shuffled.write_text("green\nblue\nred\n")
    rc, err, by_name = run("by_name", "--classnames", str(shuffled))
    assert rc == 0 and "in another order: matched by name" in err
    assert by_name["settings"]["class_order"] == "matched by folder name"
    scalars = {k: v for k, v in folders["metrics"].items() if not isinstance(v, (list, dict))}
    assert {"top1", "mean_per_class_recall", "num_samples"} <= set(scalars)
    for key, value in scalars.items():
        assert by_name["metrics"][key] == value, key  # the same classifier, its classes renumbered
    shuffled.write_text("green\nblue\nred\nwhite\n")
    rc, err, _ = run("refused", "--classnames", str(shuffled))
    assert rc == 2 and err.count("\n") == 1 and "has 3 class folders but" in err


def test_result_file_names_and_table(tmp_path):
    from mindclip.eval import results

    assert results.result_path("out", "tiny_swin", "runs/a b/ckpt/last.ckpt", "coco", "retrieval") == \
        os.path.join("out", "tiny_swin@last__coco__retrieval.json")
    assert results.model_tag("m", "x/step 10.ckpt") == "m@step_10"
    with pytest.raises(ValueError, match="unknown task 'linear'"):
        results.result_path("out", "m", None, "d", "linear")
    records = [results.make_result("m", None, name, "zeroshot", {"top1": top1, "top5": 0.5, "mean_per_class_recall": 0.25},
                                   {}, 1.0) for name, top1 in (("cifar10", 0.1234), ("imagenet1k", 0.5))]
    path = results.write_result(str(tmp_path), records[0])
    assert results.read_result(path)["metrics"]["top1"] == 0.1234 and os.listdir(tmp_path) == ["m__cifar10__zeroshot.json"]
    lines = results.format_table(records).splitlines()
    assert lines[0].split() == ["model", "dataset", "top1", "top5", "mean/cls"]
    assert lines[1].split() == ["m", "cifar10", "12.34", "50.00", "25.00"]
    assert lines[2].split() == ["m", "imagenet1k", "50.00", "50.00", "25.00"]


def test_eval_never_imports_train_or_losses():
    import subprocess
    import sys

    code = ("import sys, mindclip.eval, mindclip.eval.heldout, mindclip.models; "
            "bad = sorted(m for m in sys.modules if m.startswith(('mindclip.train', 'mindclip.losses'))); "
            "print('BAD', bad) if bad else print('CLEAN')")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "CLEAN" in out.stdout, out.stdout + out.stderr[-2000:]
