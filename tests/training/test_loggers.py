"""The CSV step log survives a resume: Lightning's own writer deleted it at start."""

from __future__ import annotations

from pathlib import Path

from medssl.artifacts.rundir import read_csv_rows as _rows
from medssl.training.loggers import AppendingCSVLogger, trim_step_log


def test_a_second_logger_appends_to_the_first_ones_rows(tmp_path: Path) -> None:
    first = AppendingCSVLogger(tmp_path, name="logs", version="")
    first.log_metrics({"loss": 1.0}, step=0)
    first.log_metrics({"loss": 0.5}, step=1)  # written at once: no save() needed
    path = tmp_path / "logs" / "metrics.csv"
    assert [r["step"] for r in _rows(path)] == ["0", "1"]
    second = AppendingCSVLogger(tmp_path, name="logs", version="")  # the resumed process
    second.log_metrics({"loss": 0.25}, step=2)
    second.log_metrics({"loss": 0.2, "lr": 0.1}, step=3)  # a new column widens the header
    rows = _rows(path)
    assert [(r["step"], r["loss"]) for r in rows] == [
        ("0", "1.0"),
        ("1", "0.5"),
        ("2", "0.25"),
        ("3", "0.2"),
    ]
    assert [r["lr"] for r in rows] == ["", "", "", "0.1"]


def test_trim_drops_the_steps_a_resumed_run_trains_again(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,loss,step\n0,3.0,9\n0,2.0,19\n1,1.0,29\n1,,\n")
    assert trim_step_log(path, 20) == 1  # resuming at global step 20: batch 29 again
    assert [(r["step"], r["loss"]) for r in _rows(path)] == [("9", "3.0"), ("19", "2.0"), ("", "")]
    assert trim_step_log(path, 20) == 0  # idempotent
    assert trim_step_log(path, None) == 3 and not path.exists()  # a fresh start
    assert trim_step_log(path, 5) == 0  # no log yet
