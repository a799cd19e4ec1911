"""dcnn_helpers.bench: the training command line, the recipe, its ablation and the speed run, on tiny fixtures."""

import dataclasses
import json
import subprocess
import sys
import textwrap

import pytest
import torch

from dcnn_helpers import bench, config, train


def test_train_command_writes_the_json(fake_cache, tmp_path, capsys):
    out = tmp_path / "run.json"
    argv = ["train", "--data", str(fake_cache.parent), "--model", "resnet-8", "--epochs", "2", "--batch-size", "32",
            "--device", "cpu", "--target-acc", "0.01", "--json", str(out), "--quiet", "--label-smoothing", "0.1",
            "--no-eval-every-epoch", "--plp", "none"]
    assert bench.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["config"] == train.TrainConfig(model="resnet-8", epochs=2, batch_size=32, label_smoothing=0.1,
                                                 eval_every_epoch=False).to_dict()
    assert [h["test_acc"] is None for h in result["history"]] == [True, False]
    assert result["total_seconds"] == pytest.approx(result["seconds"] + result["eval_seconds"])
    assert result["time_to_target"] == pytest.approx(result["total_seconds"])
    printed = capsys.readouterr().out
    assert "resnet-8: test accuracy" in printed and "warm-up (not counted)" in printed


def test_train_command_with_the_fast_recipe(fake_cache, tmp_path):
    out = tmp_path / "fast.json"
    assert bench.main(["train", "--data", str(fake_cache), "--recipe", "fast", "--epochs", "1.5", "--device", "cpu",
                       "--quiet", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())["config"]
    assert saved == bench.fast_config(epochs=1.5).to_dict()


def test_module_runs_as_a_command():
    run = subprocess.run([sys.executable, "-m", "dcnn_helpers.bench", "train", "--help"], capture_output=True,
                         text=True, cwd=config.REPO_ROOT, timeout=60)
    assert run.returncode == 0 and "--whiten-bias-epochs" in run.stdout and "--no-ema" in run.stdout
    for command in ("speedrun", "ablation"):
        run = subprocess.run([sys.executable, "-m", "dcnn_helpers.bench", command, "--help"], capture_output=True,
                             text=True, cwd=config.REPO_ROOT, timeout=60)
        assert run.returncode == 0 and "--seeds" in run.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "vgg-16", "--epochs", "1"], "not a known model"),
        (["--model", "fast", "--epochs", "1", "--resume"], "--resume needs --checkpoint"),
        (["--model", "fast"], "--model and --epochs are needed"),
        (["--model", "fast", "--epochs", "1", "--lr", "nan"], "lr=nan must be a finite number"),
        (["--model", "fast", "--epochs", "1", "--tta", "all"], "invalid choice"),
        (["--model", "fast", "--epochs", "1", "--json", "/"], "--json path / is a folder"),
    ],
)
def test_bad_arguments_exit_with_one_line(fake_cache, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["train", "--data", str(fake_cache), "--device", "cpu", *extra])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in err
    assert len(err.strip().splitlines()) <= 2  # usage line + one error line


def test_missing_data_says_which_files(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(["train", "--data", str(tmp_path), "--model", "fast", "--epochs", "1"])
    assert "missing data_batch_1.npz" in capsys.readouterr().err


def test_resume_of_another_model_is_one_line(fake_cache, tmp_path, capsys):
    path = str(tmp_path / "run.pt")
    common = ["train", "--data", str(fake_cache), "--epochs", "1", "--batch-size", "32", "--device", "cpu", "--quiet",
              "--checkpoint", path]
    assert bench.main([*common, "--model", "resnet-8"]) == 0
    with pytest.raises(SystemExit):
        bench.main([*common, "--model", "dmrnet-8", "--resume"])
    assert "belongs to model 'resnet-8', not 'dmrnet-8'" in capsys.readouterr().err
    (tmp_path / "run.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit):
        bench.main([*common, "--model", "resnet-8", "--resume"])
    assert "truncated or not a checkpoint" in capsys.readouterr().err


def test_fast_config_follows_airbench94():
    cfg = bench.fast_config()
    assert cfg.lr == pytest.approx(1.5) and cfg.batch_size == 1024 and cfg.epochs == 9.9
    assert cfg.lr * cfg.weight_decay == pytest.approx(0.0153 * 1024 / (1024 * (1 + 1 / 0.15)))  # decay per step
    assert bench.fast_config(batch_size=512).lr == pytest.approx(0.75)
    assert bench.fast_config(ema=False).ema is False


def test_ablation_removes_each_technique_and_reuses_models_for_tta(fake_ds):
    rows = {"full recipe": {}, "no TTA": {"tta": "none"}, "no look-ahead": {"ema": False}}
    base = bench.fast_config(epochs=1, batch_size=32)
    records = bench.ablation(fake_ds, [0, 1], "cpu", rows=rows, base=base, progress=False)
    assert [r["technique"] for r in records] == ["full recipe"] * 2 + ["no TTA"] * 2 + ["no look-ahead"] * 2
    full, no_tta = records[:2], records[2:4]
    assert [r["seconds"] for r in no_tta] == [r["seconds"] for r in full]  # the same trained models
    summary = bench.summarise(records)
    assert [s["technique"] for s in summary] == list(rows) and all(s["runs"] == 2 for s in summary)
    assert "full recipe" in bench.format_summary(summary, "technique")
    with pytest.raises(ValueError, match="first row"):
        bench.ablation(fake_ds, [0], "cpu", rows={"no TTA": {"tta": "none"}}, base=base, progress=False)


FAKE_AIRBENCH = textwrap.dedent("""
    import os
    calls = []

    def warmup94():
        print("| run | epoch |")

    def train94():
        assert os.path.isfile("cifar10/train.pt") and os.path.isfile("cifar10/test.pt")
        calls.append(1)
        print("|  run   |  epoch  |  train_loss  |  train_acc  |  val_acc  |  tta_val_acc  |  total_time_seconds  |")
        print("|      0 |       1 |       1.0000 |      0.5000 |    0.5000 |               |               0.1000 |")
        print("|        |    eval |       1.0000 |      0.5000 |    0.5000 |        0.9412 |               2.5000 |")
""")


def test_speedrun_against_a_stand_in_for_airbench(fake_ds, tmp_path, monkeypatch, capsys):
    (tmp_path / "fakebench.py").write_text(FAKE_AIRBENCH)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(bench, "fast_config", lambda **kw: dataclasses.replace(
        train.TrainConfig(model="fast", epochs=1, batch_size=32, tta="flip-translate"), **kw))
    real = bench.airbench_runs
    monkeypatch.setattr(bench, "airbench_runs", lambda fake_ds, seeds: real(fake_ds, seeds, module="fakebench"))
    result = bench.speedrun(fake_ds, [0, 1], "cpu", against_airbench=True, progress=False)
    methods = [r["method"] for r in result["runs"]]
    assert methods[:2] == ["fast (this course)"] * 2 and len(methods) == 4
    airbench = [r for r in result["runs"] if r["method"] != "fast (this course)"]
    assert [r["test_acc"] for r in airbench] == [0.9412, 0.9412] and airbench[0]["total_seconds"] == 2.5
    summary = {row["method"]: row for row in result["summary"]}
    assert summary[methods[-1]]["time_to_target"] == 2.5 and summary[methods[-1]]["acc_ci95"] == 0
    json.dumps(result)  # JSON-ready


def test_missing_airbench_is_a_clear_error(fake_ds):
    with pytest.raises(RuntimeError, match="pip install airbench==0.1.8"):
        bench.airbench_runs(fake_ds, [0], module="no_such_airbench_module")


def test_image_grid_places_images_row_by_row():
    images = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 2, 2, 3)
    grid = bench.image_grid(images, ncols=3)
    assert grid.shape == (2 * 3, 3 * 3, 3)
    assert grid[0, 0, 0] == 0 and grid[0, 3, 0] == 1 and grid[3, 0, 0] == 3 and grid[2, 0, 0] == 255
    with pytest.raises(ValueError, match="ncols"):
        bench.image_grid(images, ncols=4)


def test_matmul_ceiling_is_positive_and_refuses_absurd_sizes():
    assert bench.matmul_tflops("cpu", size=64, repeats=2) > 0
    with pytest.raises(ValueError, match="would need about"):
        bench.matmul_tflops("cpu", size=10**6)
