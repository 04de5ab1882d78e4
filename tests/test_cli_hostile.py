"""Hostile uses of the command line: settings that do not apply, a console that cannot show a
character, a disk that fills while the model is saved."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys

import pandas as pd
import pytest

POSITIVE = ["lovely soup", "great coffee and kind staff", "best bread in town", "a wonderful meal"]
NEGATIVE = ["cold soup", "weak coffee and rude staff", "stale bread", "a miserable meal"]


def _labels(path, n: int = 12):
    rows = [(f"{POSITIVE[i % 4]} {i}", "positive") for i in range(n)]
    rows += [(f"{NEGATIVE[i % 4]} {i}", "negative") for i in range(n)]
    pd.DataFrame(rows, columns=["review", "label"]).to_csv(path, index=False)
    return path


def _run(*args, cwd, env=None, preexec_fn=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "review_scorer", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=env,
                          preexec_fn=preexec_fn)


@pytest.mark.parametrize("extra", [["--epochs", "7"], ["--config", "missing.toml"],
                                   ["--max-len", "3", "--vocab-size", "50"], ["--quick"],
                                   ["--limit", "10"]])
def test_fine_tuning_refuses_settings_it_would_not_use(trained_model, tmp_path, extra):
    data = _labels(tmp_path / "cafe.csv")
    run = _run("train", "--data", data, "--from-model", trained_model.model_dir, *extra,
               cwd=tmp_path, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "not used when fine-tuning" in lines[0]
    assert all(flag in lines[0] for flag in extra if flag.startswith("--"))
    assert "--from-scratch" in lines[0]
    assert not (tmp_path / "models").exists()  # refused before any work


def test_a_console_that_cannot_show_a_character_does_not_fail_a_finished_run(trained_model, tmp_path):
    pd.DataFrame({"review 😀": ["a great film", "a dull film"]}).to_csv(tmp_path / "emoji.csv",
                                                                       index=False)
    env = {**os.environ, "PYTHONIOENCODING": "cp1252"}
    run = _run("score", "emoji.csv", "--model-dir", trained_model.model_dir, "--out-dir", "out",
               cwd=tmp_path, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "'review \\U0001f600'" in run.stdout  # the column, escaped, in the summary
    assert (tmp_path / "out" / "emoji.predictions.csv").is_file()


def _file_size_limit(limit_bytes: int):
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then a write past the limit fails: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return limit


def test_a_model_that_cannot_be_written_is_one_line_and_the_old_one_stays(trained_model, tmp_path):
    data = _labels(tmp_path / "cafe.csv")
    first = _run("train", "--data", data, "--from-model", trained_model.model_dir, "--model-dir",
                 "cafe", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in (tmp_path / "cafe").iterdir()}
    # The operating system refuses to let files grow past 4 KB: the new model.keras cannot be saved.
    again = _run("train", "--data", data, "--from-model", trained_model.model_dir, "--model-dir",
                 "cafe", "--overwrite", cwd=tmp_path, preexec_fn=_file_size_limit(4096))
    assert again.returncode != 0 and "Traceback" not in again.stderr
    errors = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot write the model to cafe: File too large")
    assert {p.name: p.read_bytes() for p in (tmp_path / "cafe").iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cafe", "cafe.csv"]  # no staging left


def test_fine_tuning_on_labels_of_one_class_says_which_class_is_missing(trained_model, tmp_path):
    pd.DataFrame({"review": [f"{POSITIVE[i % 4]} {i}" for i in range(20)],
                  "label": ["positive"] * 20}).to_csv(tmp_path / "happy.csv", index=False)
    run = _run("train", "--data", "happy.csv", "--from-model", trained_model.model_dir,
               cwd=tmp_path, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        "error: happy.csv has no negative labels, so the model cannot be adapted to or measured "
        "on that class; label some negative reviews too (at least 50 of each class)")


def test_fine_tuning_says_which_labeled_rows_it_left_out(trained_model, tmp_path):
    import json

    data = _labels(tmp_path / "cafe.csv")
    frame = pd.read_csv(data)
    extra = pd.DataFrame({"review": ["", "😀😀", "<br/>"], "label": ["positive", "negative", "negative"]})
    pd.concat([frame, extra]).to_csv(data, index=False)
    run = _run("train", "--data", data, "--from-model", trained_model.model_dir, "--model-dir",
               "cafe", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["notes"] == ["rows left out of training: 1 with an empty text; 2 whose text has "
                                "no words (only emoji, markup or punctuation)"]
    assert summary["adaptation"]["labels"] == 24


@pytest.mark.parametrize("args,expected", [
    (["score", "x.csv", "--batch-size", "abc"],
     "error: Invalid value for '--batch-size': 'abc' is not a valid integer. "
     "(see 'review-scorer score --help')"),
    (["score"], "error: Missing argument 'FILES...'. (see 'review-scorer score --help')"),
    (["scroe", "x.csv"], "error: No such command 'scroe'. (see 'review-scorer --help')"),
])
def test_click_usage_errors_are_one_line_too(tmp_path, args, expected):
    run = subprocess.run([sys.executable, "-c", "from review_scorer.cli import main; main()", *args],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip() == expected or (args[0] == "scroe" and run.stderr.startswith(
        "error: No such command 'scroe'") and len(run.stderr.strip().splitlines()) == 1)


def test_an_output_name_too_long_for_the_file_system_is_refused_before_scoring(trained_model, tmp_path):
    from click.testing import CliRunner

    from review_scorer.cli import cli

    name = "r" * 236 + ".csv"  # the input itself is fine; "<stem>.predictions.csv" is not
    (tmp_path / name).write_text("review\nA lovely film\n", encoding="utf-8")
    run = CliRunner().invoke(cli, ["score", str(tmp_path / name), "--model-dir",
                                   str(trained_model.model_dir), "--out-dir", str(tmp_path / "out")])
    assert run.exit_code != 0
    errors = [line for line in run.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "rename the input file to something shorter" in errors[0]
    assert "is 252 bytes" not in errors[0] and "would be 252 bytes" in errors[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
