"""The wheel carries everything the program needs at run time (templates, default model)."""

import os
import subprocess
import sys
import venv
import zipfile

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "--wheel-dir", str(out), str(REPO)],
        check=True, capture_output=True, text=True,
    )
    (path,) = out.glob("review_scorer-*.whl")
    return path


def test_packaging_wheel_contains_templates_and_default_model(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("base.html", "score.html", "train.html", "report.css", "report.js"):
        assert f"review_scorer/templates/{template}" in names, template
    assert "review_scorer/cli.py" in names
    for shipped in ("model.keras", "vocab.txt", "meta.json", "config.json", "lexicon.npz"):
        assert f"review_scorer/default_model/{shipped}" in names, shipped
    assert not any(n.startswith(("tests/", "benchmarks/", "sample_data/", "templates/")) for n in names)


def test_packaging_wheel_holds_every_module_of_the_package(wheel):
    # pyproject.toml lists the packages (templates/ is mapped in): a new one must be listed too.
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {p.relative_to(REPO).as_posix() for p in (REPO / "review_scorer").rglob("*.py")}
    assert source and source <= names, sorted(source - names)


def test_packaging_templates_have_one_copy_at_the_top_level():
    assert (REPO / "templates" / "base.html").is_file()
    assert not (REPO / "review_scorer" / "templates").exists()


@pytest.mark.slow
def test_packaging_wheel_installs_into_a_fresh_venv_and_runs(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # System site-packages provide the heavy dependencies (already installed); the package
    # itself comes only from the wheel.
    venv.create(env_dir, with_pip=True, system_site_packages=True)
    python = env_dir / "bin" / "python"
    # --ignore-installed: an editable install in the system site-packages must not stand in.
    subprocess.run([python, "-m", "pip", "install", "--no-deps", "--no-index", "--ignore-installed",
                    "--quiet", str(wheel)], check=True, capture_output=True, text=True)
    clean_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([env_dir / "bin" / "review-scorer", "--help"], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env)
    assert proc.returncode == 0, proc.stderr
    assert "score" in proc.stdout and "train" in proc.stdout
    probe = (
        "import review_scorer, review_scorer.report.render as r, review_scorer.model.artifacts as a\n"
        "from review_scorer.report.data import ModelSection, TrainReport\n"
        "print(review_scorer.__file__)\n"
        "html = r.build_report_html(TrainReport(title='m', generated_at='now',\n"
        "    package_version='0', model=ModelSection(name='m', path='p', trained_at='',\n"
        "    data_source='', device='', config={}, history={}, best_epoch=None,\n"
        "    test_metrics=None, sizes={}, train_seconds=0.0)))\n"
        "assert '<html' in html\n"
        "print((a.packaged_model_dir() / 'meta.json').exists())\n"
        "from review_scorer.report.loader import template_root\n"
        "print(template_root().joinpath('base.html'))\n"
    )
    proc = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env=clean_env)
    assert proc.returncode == 0, proc.stderr
    installed_at, shipped_model, templates_at = proc.stdout.split()
    assert installed_at.startswith(str(env_dir)), "imported the source tree, not the wheel"
    assert shipped_model == str((REPO / "review_scorer/default_model/meta.json").exists())
    assert templates_at.startswith(str(env_dir)), "rendered the checkout's templates, not the wheel's"
    # The whole product from the wheel: score a file with the shipped model, get the report.
    (tmp_path / "reviews.csv").write_bytes((REPO / "sample_data" / "reviews.csv").read_bytes())
    proc = subprocess.run([env_dir / "bin" / "review-scorer", "score", "reviews.csv", "--out-dir", "out"],
                          capture_output=True, text=True, cwd=tmp_path, env=clean_env)
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "out" / "reviews.html").read_text(encoding="utf-8")
    assert "<html" in page and "<script" in page
