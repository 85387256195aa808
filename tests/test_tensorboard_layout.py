"""Logdir layouts, the CLI's import-tensorboard errors, and the tag rule tables."""

from __future__ import annotations

import pytest

from weightreport.cli import main
from weightreport.integrations.tb_tags import DROP, RUN_INFO, SCALAR, scalar_name, split_tag

SummaryWriter = pytest.importorskip("torch.utils.tensorboard").SummaryWriter


def _log(folder, tag: str = "Loss/train") -> None:
    writer = SummaryWriter(str(folder))
    for step in range(3):
        writer.add_scalar(tag, 1.0 / (step + 1), step)
    writer.close()


def test_logdir_of_runs_imports_each(tmp_path, capsys):
    """runs/exp1 and runs/a/exp2 become RUN_DIR/exp1 and RUN_DIR/a_exp2, one printed line each; --run picks one."""
    _log(tmp_path / "runs" / "exp1")
    _log(tmp_path / "runs" / "a" / "exp2")
    assert main(["import-tensorboard", str(tmp_path / "runs"), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "out" / "a_exp2"), str(tmp_path / "out" / "exp1")]
    assert (tmp_path / "out" / "exp1" / "run.json").is_file()
    assert (tmp_path / "out" / "a_exp2" / "run.json").is_file()
    assert main(["import-tensorboard", str(tmp_path / "runs"), str(tmp_path / "one"), "--run", "a/exp2"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "one" / "a_exp2")]
    assert not (tmp_path / "one" / "exp1").exists()


def test_logdir_with_events_is_one_run(tmp_path, capsys):
    """Event files directly in LOGDIR make RUN_DIR itself the run."""
    _log(tmp_path / "tb")
    assert main(["import-tensorboard", str(tmp_path / "tb"), str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "run")]
    assert (tmp_path / "run" / "run.json").is_file()


@pytest.mark.parametrize("case", ["missing", "file", "empty", "existing", "unknown_run"])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case):
    """A missing LOGDIR, a file, a folder without events, a RUN_DIR holding a run and an unknown --run each give one line and exit 2."""
    _log(tmp_path / "tb")
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    main(["import-tensorboard", str(tmp_path / "tb"), str(tmp_path / "run")])
    capsys.readouterr()
    logdir, extra = {"missing": ("nope", []), "file": ("file.txt", []), "empty": ("empty", []),
                     "existing": ("tb", []), "unknown_run": ("tb", ["--run", "x"])}[case]
    assert main(["import-tensorboard", str(tmp_path / logdir), str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    if case == "empty":
        assert str(tmp_path / "empty") in err and "events.out.tfevents" in err


@pytest.mark.parametrize(("tag", "expected"), [
    ("weights/fc1.weight", ("fc1.weight", "param")), ("fc1/weight", ("fc1.weight", "param")),
    ("parameters/fc1.weight", ("fc1.weight", "param")), ("fc1.weight", ("fc1.weight", "param")),
    ("grads/fc1.weight", ("fc1.weight", "grad")), ("gradients/fc1.weight", ("fc1.weight", "grad")),
    ("fc1.weight.grad", ("fc1.weight", "grad")), ("fc1.weight/grad", ("fc1.weight", "grad")),
    ("fc1/weight_grad", ("fc1.weight", "grad")),
])
def test_histogram_tag_rules(tag, expected):
    """Each documented histogram spelling maps to the parameter's qualified name and kind."""
    assert split_tag(tag) == expected


@pytest.mark.parametrize(("tag", "expected"), [
    ("Loss/train", (SCALAR, "loss")), ("train/loss", (SCALAR, "loss")), ("loss", (SCALAR, "loss")),
    ("Loss/val", (SCALAR, "val_loss")), ("Loss/validation", (SCALAR, "val_loss")),
    ("val/loss", (SCALAR, "val_loss")), ("eval/loss", (SCALAR, "val_loss")),
    ("validation/loss", (SCALAR, "val_loss")), ("Accuracy/train", (SCALAR, "acc")),
    ("Accuracy/val", (SCALAR, "val_acc")), ("Loss/test", (SCALAR, "test_loss")),
    ("train/learning_rate", (SCALAR, "lr")), ("lr", (SCALAR, "lr")), ("learning_rate", (SCALAR, "lr")),
    ("lr-SGD", (SCALAR, "lr")), ("train/grad_norm", (SCALAR, "grad_norm")),
    ("train/epoch", (DROP, "train/epoch")), ("epoch", (DROP, "epoch")),
    ("train/train_runtime", (RUN_INFO, "train_runtime")), ("train/total_flos", (RUN_INFO, "total_flos")),
    ("train/train_samples_per_second", (RUN_INFO, "train_samples_per_second")),
    ("eval/runtime", (RUN_INFO, "eval_runtime")), ("eval/steps_per_second", (RUN_INFO, "eval_steps_per_second")),
    ("MyMetric", (SCALAR, "MyMetric")),
])
def test_scalar_tag_rules(tag, expected):
    """Each documented scalar spelling maps to its weightreport name, run_info, or is dropped; others keep their tag."""
    assert scalar_name(tag) == expected
