"""Training curves: log parsing (resumes, non-finite steps, bad files) and where the lines are drawn.

The curves of a real training log are checked in test_viz_tool.py.
"""
import json

import numpy as np
import pytest

from mindclip.viz import curves
from tool_loader import load_tool


def _record(step, loss, parts, finite=True, lr=1e-3, scale=14.3, ips=50.0):
    return {"step": step, "epoch": 0, "lr": lr, "loss": loss, "parts": parts, "logit_scale": scale,
            "step_time": 0.1, "images_per_s": ips, "skipped_steps": 0, "finite": finite}


def _write(path, records, extra_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            f.write(json.dumps(record) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return str(path)


def test_resumed_steps_keep_the_last_record_and_non_finite_losses_are_gaps(tmp_path):
    records = [_record(1, 5.0, {"inst": 5.0}), _record(2, 4.0, {"inst": 4.0}), _record(3, 9.9, {"inst": 9.9}),
               _record(2, 3.5, {"inst": 3.5}, lr=2e-3),  # resumed from step 1: step 2 again
               _record(3, float("nan"), {"inst": float("nan")}, finite=False, lr=3e-3)]
    run = curves.load_run(_write(tmp_path / "train_log.jsonl", records), "resumed")
    np.testing.assert_array_equal(run.steps, [1, 2, 3])
    np.testing.assert_array_equal(run.series["loss"][:2], [5.0, 3.5])
    assert np.isnan(run.series["loss"][2]) and np.isnan(run.series["part:inst"][2])
    np.testing.assert_array_equal(run.series["lr"], [1e-3, 2e-3, 3e-3])  # the schedule is still drawn
    assert run.skipped == 1


def test_runs_with_different_parts_share_one_figure(tmp_path):
    clip = curves.load_run(_write(tmp_path / "clip.jsonl", [_record(s, 6.0 - s, {"inst": 6.0 - s}) for s in (1, 2, 3)]),
                           "clip")
    light = curves.load_run(_write(tmp_path / "light.jsonl",
                                   [_record(s, 5.0 - s, {"inst": 5.5 - s, "token": 0.9 - 0.1 * s}, ips=20.0 * s)
                                    for s in (1, 2, 3, 4)]), "lightclip")
    figure, axes = curves.plot_runs([clip, light])
    assert list(axes) == ["loss", "part:inst", "part:token", "lr", "logit_scale", "images_per_s"]
    pixels = np.asarray(figure)
    colors = curves.draw.palette(2)
    for name, run, color in [("loss", clip, colors[0]), ("part:token", light, colors[1]),
                             ("images_per_s", light, colors[1])]:
        for step, value in zip(run.steps, run.series[name]):  # each data point lies on the run's line
            x, y = (int(round(float(v))) for v in axes[name].to_pixel(step, value))
            window = pixels[y - 1:y + 2, x - 1:x + 2].reshape(-1, 3)
            assert any(tuple(p) == color for p in window), (name, step)
    box = axes["part:token"].box  # the clip run has no token part: nothing of its colour in that panel
    inside = pixels[box[1] + 1:box[3], box[0] + 1:box[2]].reshape(-1, 3)
    assert not (inside == colors[0]).all(axis=1).any()


def test_bad_logs_are_refused_with_file_and_line(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty training log"):
        curves.load_run(str(empty))
    broken = _write(tmp_path / "broken.jsonl", [_record(1, 1.0, {})], ["{not json"])
    with pytest.raises(ValueError, match=r"broken.jsonl:2: not a JSON object"):
        curves.load_run(broken)
    lacking = _write(tmp_path / "lacking.jsonl", [{"step": 1, "loss": 2.0, "parts": {}}])
    with pytest.raises(ValueError, match=r"lacking.jsonl:1: record lacks \['lr', 'logit_scale', 'images_per_s'\]"):
        curves.load_run(lacking)
    with pytest.raises(FileNotFoundError, match="training log not found"):
        curves.load_run(str(tmp_path / "missing_run"))


def test_a_part_that_is_zero_at_every_step_is_a_disabled_loss(tmp_path):
    records = [_record(s, 2.0, {"inst": 2.0, "mlm_text": 0.0, "token": 0.0 if s == 1 else 0.5}) for s in (1, 2)]
    run = curves.load_run(_write(tmp_path / "train_log.jsonl", records))
    assert [n for n in run.series if n.startswith("part:")] == ["part:inst", "part:token"]
    np.testing.assert_array_equal(run.series["part:token"], [0.0, 0.5])


def test_the_tool_reports_bad_input_with_exit_status_2(tmp_path, capsys):
    import os

    tool = load_tool("visualize")
    empty = tmp_path / "train_log.jsonl"
    empty.write_text("")
    assert tool.main(["curves", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 2
    assert "empty training log" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
    good = _write(tmp_path / "good.jsonl", [_record(s, 1.0 / s, {"inst": 1.0 / s}) for s in (1, 2)])
    assert tool.main(["curves", good, "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").exists()
