"""Tests for "How this model was made" in both reports, and the pretraining loss trace behind it."""

from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path

import pytest

from review_scorer.model.artifacts import REPORT_FILE
from review_scorer.report.data import ModelSection, TrainReport
from review_scorer.report.model_section import shorten_paths
from review_scorer.report.provenance import FROM_SCRATCH, language_model_curve, model_provenance
from review_scorer.report.render import build_report_html
from tests.conftest import MINI_IMDB, REPO
from tests.test_pretrain import TINY_PRETRAIN

# Two trace points an epoch instead of ~50: the tiny corpus has only 6 steps an epoch, and with a
# point every 3 steps a resumed run must carry a half-collected point across the interruption.
TRACE_POINTS = 2
REVIEWS = REPO / "sample_data" / "reviews.csv"
LM_PLOT = 'class="plot plot-lm-curve"'


def _train_report(provenance: dict) -> TrainReport:
    """A training report of a model named "m" that shows nothing but how it was made."""
    return TrainReport(title="", generated_at="", package_version="",
                       model=ModelSection(name="m", provenance=provenance))


def _cli(*args):
    from click.testing import CliRunner

    from review_scorer.cli import cli

    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _pretrain(out: Path, **kwargs):
    from review_scorer.config import PretrainConfig
    from review_scorer.training import pretrain

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pretrain, "TRACE_POINTS_PER_EPOCH", TRACE_POINTS)
        return pretrain.run_pretraining(PretrainConfig.from_dict(TINY_PRETRAIN),
                                        source=str(MINI_IMDB), output_dir=out, **kwargs)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    from review_scorer.model.encoder import load_encoder_dir

    result = _pretrain(tmp_path_factory.mktemp("provenance") / "tiny-lm")
    return load_encoder_dir(result.encoder_dir)


@pytest.fixture(scope="module")
def fine_tuned(encoder, tiny_config_file, tmp_path_factory):
    """A tiny model trained from the encoder through the CLI, and a file scored with it."""
    folder = tmp_path_factory.mktemp("fine-tuned")
    trained = _cli("train", "--data", MINI_IMDB, "--config", tiny_config_file, "--epochs", 1,
                   "--encoder", encoder.path, "--model-dir", folder / "model")
    assert trained.exit_code == 0, trained.output
    scored = _cli("score", REVIEWS, "--model-dir", folder / "model", "--out-dir", folder / "out")
    assert scored.exit_code == 0, scored.output
    (score_report,) = (folder / "out").glob("*.html")
    return folder / "model", score_report


def _stage_keys(html: str) -> list[str]:
    return re.findall(r'<li class="stage" id="stage-([a-z-]+)">', html)


# ---------------------------------------------------------------- the trace in pretraining


def test_pretrain_history_keeps_a_loss_trace_against_tokens_seen(encoder):
    history = encoder.history
    steps = encoder.meta["tokens_seen"] // encoder.config.epochs // (
        encoder.config.batch_size * encoder.config.bptt)
    every = steps // TRACE_POINTS
    assert len(history["trace_tokens"]) == len(history["trace_loss"]) == TRACE_POINTS * 2
    step_tokens = encoder.config.batch_size * encoder.config.bptt
    assert history["trace_tokens"] == [step_tokens * every * (i + 1) for i in range(4)]
    # Each epoch's measurement sits at the tokens seen when it ended, the trace's last point.
    assert history["tokens_seen"] == history["trace_tokens"][1::2]
    assert history["tokens_seen"][-1] == encoder.meta["tokens_seen"]
    assert all(0 < loss < 20 for loss in history["trace_loss"])


def test_pretrain_trace_is_the_same_after_an_interruption(encoder, tmp_path):
    out = tmp_path / "resumed"
    seen = []

    def stop_after_four_steps(event):
        if event.stage == "training":
            seen.append(event)
            if len(seen) == 4:  # one step past the first trace point: a point half collected
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _pretrain(out, progress=stop_after_four_steps)
    state = json.loads((out / ".checkpoint" / "state" / "state.json").read_text())
    assert state["step"] == 4 and state["trace_steps"] == 1
    assert state["history"]["trace_tokens"] == encoder.history["trace_tokens"][:1]
    result = _pretrain(out)
    assert result.resumed_from_step == 4
    assert result.history["trace_tokens"] == encoder.history["trace_tokens"]
    assert result.history["tokens_seen"] == encoder.history["tokens_seen"]
    assert result.history["trace_loss"] == pytest.approx(encoder.history["trace_loss"], rel=1e-3)


# ---------------------------------------------------------------- the reports


def test_provenance_reports_of_a_fine_tuned_model_show_pretraining(encoder, fine_tuned):
    model_dir, score_report = fine_tuned
    corpus = encoder.meta["corpus"]
    expected = [
        "How this model was made",
        "Pretrained as a language model on",
        escape(encoder.name),
        # Reports are mail-safe: the corpus is named by its folder, not its full path.
        escape(shorten_paths(corpus["source"])),
        f"{corpus['reviews_used']:,} reviews trained on",
        f"{corpus['heldout_reviews']:,} held out",
        f"{corpus['unlabeled_reviews']:,} unlabeled",
        f"{corpus['vocab_size']:,} words",
        f"{encoder.meta['tokens']:,} per epoch",
        f"{encoder.meta['tokens_seen']:,} seen in all",
        f"{encoder.history['heldout_perplexity'][-1]:,.1f} after epoch 2",
    ]
    for html in (model_dir / REPORT_FILE, score_report):
        text = html.read_text(encoding="utf-8")
        for piece in expected:
            assert piece in text, (html.name, piece)
        assert _stage_keys(text) == ["pretraining", "fine-tuning", "clauses", "lexicon"]
        assert FROM_SCRATCH not in text.lower()
        # The language model's curve, drawn from the trace, beside the classifier's curves.
        pair = text[text.index('<div class="curve-pair">'):]
        assert pair.index('id="lm-curve"') < pair.index('id="classifier-curves"')
        svg = pair[pair.index("<svg"):pair.index("</svg>")]
        assert LM_PLOT in svg
        for gid in ("lm-trace-loss", "lm-epoch-loss", "lm-heldout-loss"):
            assert f'id="{gid}"' in svg, gid
        assert not re.search(r'(href|src)="(https?:|//)', svg)  # nothing fetched


def test_provenance_reports_of_a_model_from_scratch_say_so(trained_model, tmp_path):
    scored = _cli("score", REVIEWS, "--model-dir", trained_model.model_dir, "--out-dir", tmp_path)
    assert scored.exit_code == 0, scored.output
    (score_report,) = tmp_path.glob("*.html")
    meta = json.loads((trained_model.model_dir / "meta.json").read_text())
    for html in (trained_model.model_dir / REPORT_FILE, score_report):
        text = html.read_text(encoding="utf-8")
        assert "No pretrained encoder: trained from scratch" in text
        assert f"{meta['sizes']['train']:,} labeled reviews" in text
        assert LM_PLOT not in text and '<div class="curve-pair">' not in text
        assert _stage_keys(text) == ["word-vectors", "training", "clauses", "lexicon"]
        assert f"{meta['embedding_init']['reviews']:,}" in text


# ---------------------------------------------------------------- provenance as data


def _meta(**extra) -> dict:
    return {
        "data_source": "aclImdb archive", "sizes": {"train": 900, "validation": 100, "test": 1000},
        "validation_split": "movie-disjoint", "epochs_run": 3, "best_epoch": 2, "ensemble_size": 1,
        "validation_metrics": {"accuracy": 0.875, "n": 100}, "device": "CPU", "train_seconds": 75,
        "embedding_init": {"method": "ppmi_svd", "reviews": 1400, "unlabeled_reviews": 500},
        **extra,
    }


CONFIG = {"lstm_units": 16, "embedding_dim": 16, "bidirectional": True, "max_len": 200,
          "embedding_init": "svd", "svd_window": 5, "ensemble_size": 1}


def _old_encoder(epochs: int) -> dict:
    """An encoder summary as encoders pretrained before the trace recorded it."""
    return {
        "name": "old-lm", "tokens": 5000, "epochs": epochs, "device": "CPU", "train_seconds": 30,
        "corpus": {"source": "notes.csv", "reviews": 300, "reviews_used": 297, "heldout_reviews": 3},
        "history": {"loss": [6.0, 5.5, 5.2][:epochs], "heldout_loss": [6.2, 5.9, 5.8][:epochs],
                    "heldout_perplexity": [492.7, 365.0, 330.3][:epochs]},
        "config": {"epochs": 3, "softmax": "tied", "lstm_units": 16, "embedding_dim": 16},
        "fine_tuning": {"head_epochs": 0, "encoder_lr_multiplier": 0.25},
    }


def test_provenance_distillation_is_a_stage_between_the_start_and_the_labels():
    teacher = "NB-weighted <b>logistic</b> regression"
    made = model_provenance(_meta(distillation={
        "teacher": teacher, "unlabeled_reviews": 50000, "labeled_reviews": 900,
        "teacher_validation_accuracy": 0.912, "targets": "soft"}), CONFIG)
    assert [s["key"] for s in made["stages"]] == ["word-vectors", "distillation", "training"]
    facts = {f["label"]: f["value"] for f in made["stages"][1]["facts"]}
    assert facts == {"Teacher": teacher, "Teacher's validation accuracy": "91.2%",
                     "Reviews the teacher scored": "50,000 unlabeled + 900 labeled",
                     "Targets": "soft: the teacher's probabilities"}
    assert made["from_scratch"] and "a teacher model's scores" in made["headline"]
    html = build_report_html(_train_report(made))
    assert escape(teacher) in html and teacher not in html
    assert _stage_keys(html) == ["word-vectors", "distillation", "training"]


@pytest.mark.parametrize("distillation", [{"teacher": "a bigger LSTM"}, "a bigger LSTM",
                                          {"targets": "hard", "teacher_validation_accuracy": None}])
def test_provenance_distillation_with_missing_keys_still_renders(distillation):
    made = model_provenance(_meta(distillation=distillation), CONFIG)
    stage = next(s for s in made["stages"] if s["key"] == "distillation")
    assert all(f["value"] and f["value"] != "None" for f in stage["facts"])
    html = build_report_html(_train_report(made))
    assert 'id="stage-distillation"' in html


def test_provenance_of_an_old_encoder_draws_its_epochs_and_gives_one_point_as_numbers():
    curve, note = language_model_curve(_old_encoder(3))
    assert note is None and curve["trace_x"] == []
    assert curve["x"] == [5000, 10000, 15000] and curve["x_label"] == "tokens seen"
    made = model_provenance(_meta(pretrained_encoder=_old_encoder(3)), CONFIG)
    assert [s["key"] for s in made["stages"]] == ["pretraining", "fine-tuning"]
    html = build_report_html(_train_report(made))
    assert 'id="lm-epoch-loss"' in html and 'id="lm-trace-loss"' not in html
    assert "492.7 after epoch 1, 330.3 after epoch 3" in html
    assert "all layers, the encoder&#39;s at 0.25 x the learning rate from the first epoch" in html

    one = model_provenance(_meta(pretrained_encoder=_old_encoder(1)), CONFIG)
    assert one["lm_curve"] is None
    assert "held-out perplexity 492.7" in one["lm_note"] and "after 5,000 tokens" in one["lm_note"]
    html = build_report_html(_train_report(one))
    assert LM_PLOT not in html and 'id="lm-note"' in html
    assert "1 of 3 (stopped at the time limit)" in html


def test_provenance_survives_a_meta_with_almost_nothing():
    made = model_provenance({"pretrained_encoder": {"history": "not a dict"}}, {})
    assert [s["key"] for s in made["stages"]] == ["pretraining", "fine-tuning"]
    assert made["headline"] == "Pretrained as a language model, then fine-tuned."
    assert made["lm_curve"] is None and made["lm_note"] is None
    bare = model_provenance({}, {})
    assert bare["headline"] == "No pretrained encoder: trained from scratch."
    assert [s["key"] for s in bare["stages"]] == ["training"]
    json.dumps(made, allow_nan=False)  # plain data: a context can be stored or sent as it is
