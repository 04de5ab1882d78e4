"""How a model was made, as report data: the stages that happened, their facts, the language-model curve."""

# Built from meta.json, the config and the history only (plain data; no TensorFlow, no jinja2),
# so a score report can say how the model it used was made. Every key is read defensively: a
# model directory written by an older version, or a meta with a stage half described, still
# renders, with the missing facts left out rather than invented.
#
# The result (ModelSection.provenance; its keys are report.data.Provenance):
#   {"from_scratch": bool, "headline": str,
#    "stages": [{"key", "title", "text", "facts": [{"label", "value"}]}],   in the order they ran
#    "lm_curve": {"x", "x_label", "trace_x", "trace_loss", "loss", "heldout_loss",
#                 "heldout_perplexity", "softmax"} or None (fewer than two points to draw),
#    "lm_note": str or None (the numbers, when there is a measurement but no curve)}

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

FROM_SCRATCH = "no pretrained encoder: trained from scratch"
TARGETS = {
    "soft": "soft: the teacher's probabilities",
    "hard": "hard: the teacher's positive/negative labels",
}


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    """A finite number, or None for anything else (missing, text, NaN, a bool)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _count(value: Any) -> str | None:
    number = _number(value)
    return None if number is None else f"{round(number):,}"


def _plural(value: Any, word: str) -> str:
    number = _number(value) or 0
    shown = f"{number:g}" if number != int(number) else f"{int(number):,}"
    return f"{shown} {word}{'' if number == 1 else 's'}"


def _seconds(value: Any) -> str | None:
    seconds = _number(value)
    return None if seconds is None else format_duration(seconds)


def format_duration(seconds: float) -> str:
    """A duration as people read it: 42.0 s, 3 min 07 s, 1 h 05 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _when(value: Any) -> str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return str(value)


def _joined(*parts: str | None, sep: str = ", ") -> str | None:
    kept = [p for p in parts if p]
    return sep.join(kept) if kept else None


def _facts(*pairs: tuple[str, str | None]) -> list[dict[str, str]]:
    """Fact rows, leaving out the ones whose value is unknown."""
    return [{"label": label, "value": str(value)} for label, value in pairs if value]


def _series(history: dict, key: str) -> list[float | None]:
    values = history.get(key)
    return [_number(v) for v in values] if isinstance(values, list) else []


def _last(values: list[float | None]) -> float | None:
    return next((v for v in reversed(values) if v is not None), None)


# --------------------------------------------------------------------------------------------
# Stage 1: language-model pretraining
# --------------------------------------------------------------------------------------------

def _tokens_seen(encoder: dict) -> float | None:
    history = _dict(encoder.get("history"))
    seen = _last(_series(history, "tokens_seen")) or _last(_series(history, "trace_tokens"))
    if seen is not None:
        return seen
    tokens, epochs = _number(encoder.get("tokens")), _number(encoder.get("epochs"))
    return None if tokens is None or epochs is None else tokens * epochs


def _corpus_reviews(corpus: dict) -> str | None:
    read = _count(corpus.get("reviews"))
    unlabeled, labeled = _count(corpus.get("unlabeled_reviews")), _count(corpus.get("labeled_reviews"))
    split = _joined(unlabeled and f"{unlabeled} unlabeled",
                    labeled and f"{labeled} labeled training reviews, labels unused", sep=" + ")
    return _joined(read, split and f"({split})", sep=" ")


def _held_out_text(corpus: dict) -> str | None:
    used, held = _count(corpus.get("reviews_used")), _count(corpus.get("heldout_reviews"))
    return _joined(used and f"{used} reviews trained on",
                   held and f"{held} held out to measure perplexity")


def _perplexity_text(history: dict) -> str | None:
    points = [(i + 1, v) for i, v in enumerate(_series(history, "heldout_perplexity")) if v is not None]
    if not points:
        return None
    last_epoch, last = points[-1]
    if len(points) == 1:
        return f"{last:,.1f} after epoch {last_epoch}"
    first_epoch, first = points[0]
    return f"{first:,.1f} after epoch {first_epoch}, {last:,.1f} after epoch {last_epoch}"


def _network_text(config: dict, *, language_model: bool) -> str | None:
    units, dim = _count(config.get("lstm_units")), _count(config.get("embedding_dim"))
    if units is None or dim is None:
        return None
    if language_model:
        softmax = {"sampled": "sampled softmax",
                   "tied": "full softmax tied to the embedding"}.get(str(config.get("softmax")))
        return _joined(f"forward and backward LSTMs of {units} units over {dim}-dimensional "
                       "word vectors", softmax)
    kind = "bidirectional LSTM" if config.get("bidirectional", True) else "LSTM"
    length = _count(config.get("max_len"))
    return _joined(f"{kind} of {units} units over {dim}-dimensional word vectors",
                   length and f"reviews cut to {length} words")


def _epochs_text(encoder: dict, config: dict) -> str | None:
    done, planned = _number(encoder.get("epochs")), _number(config.get("epochs"))
    if done is None:
        return None
    if planned is not None and done < planned:
        return f"{done:g} of {planned:g} (stopped at the time limit)"
    return f"{done:g}"


def pretraining_stage(encoder: dict) -> dict[str, Any]:
    """The language-model pretraining stage, from meta["pretrained_encoder"]."""
    corpus, history = _dict(encoder.get("corpus")), _dict(encoder.get("history"))
    config = _dict(encoder.get("config"))
    tokens, seen = _count(encoder.get("tokens")), _count(_tokens_seen(encoder))
    return {
        "key": "pretraining",
        "title": "Language-model pretraining",
        "text": ("Two language models, one reading each review forwards and one backwards, "
                 "learned to predict the next word. The classifier's word vectors and LSTM "
                 "started from their weights."),
        "facts": _facts(
            ("Encoder", encoder.get("name")),
            ("Text", corpus.get("source")),
            ("Reviews read", _corpus_reviews(corpus)),
            ("Used", _held_out_text(corpus)),
            ("Left out", corpus.get("excluded")),
            ("Vocabulary", corpus.get("vocab_size") is not None
             and f"{_count(corpus.get('vocab_size'))} words"),
            ("Tokens", _joined(tokens and f"{tokens} per epoch", seen and f"{seen} seen in all")),
            ("Epochs", _epochs_text(encoder, config)),
            ("Held-out perplexity", _perplexity_text(history)),
            ("Network", _network_text(config, language_model=True)),
            ("Device and time", _joined(encoder.get("device"), _seconds(encoder.get("train_seconds")))),
            ("Pretrained", _when(encoder.get("created_at"))),
        ),
    }


def _epoch_x(history: dict, encoder: dict, n: int) -> tuple[list[float], str] | None:
    """Where the per-epoch measurements sit: tokens seen (recorded, else epochs x tokens per
    epoch), or epoch numbers when neither is known."""
    recorded = _series(history, "tokens_seen")
    if len(recorded) == n and None not in recorded:
        return [float(v) for v in recorded], "tokens seen"
    per_epoch = _number(encoder.get("tokens"))
    if per_epoch:
        return [per_epoch * (i + 1) for i in range(n)], "tokens seen"
    return [float(i + 1) for i in range(n)], "epoch"


def _trace(history: dict) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(_series(history, "trace_tokens"), _series(history, "trace_loss"))
             if x is not None and y is not None]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _single_point_note(x: float, x_label: str, loss, heldout_loss, perplexity) -> str:
    where = f"after {_count(x)} tokens" if x_label == "tokens seen" else "after one epoch"
    losses = _joined(loss is not None and f"training loss {loss:.3f}",
                     heldout_loss is not None and f"held-out loss {heldout_loss:.3f}")
    numbers = _joined(losses and f"{losses} (nats per token)",
                      perplexity is not None and f"held-out perplexity {perplexity:,.1f}")
    return f"The language model was measured once, {where}: {numbers}. One point makes no curve."


def language_model_curve(encoder: dict) -> tuple[dict[str, Any] | None, str | None]:
    """(the LM curve's data, or None when fewer than two points; the numbers, when only one).

    The trace (about 50 points an epoch) is drawn when the encoder has one; encoders pretrained
    before it existed have only their per-epoch measurements.
    """
    history = _dict(encoder.get("history"))
    loss, heldout_loss = _series(history, "loss"), _series(history, "heldout_loss")
    perplexity = _series(history, "heldout_perplexity")
    n = max(len(loss), len(heldout_loss), len(perplexity))
    trace_x, trace_loss = _trace(history)
    if n == 0 and len(trace_x) < 2:
        return None, None
    x, x_label = _epoch_x(history, encoder, n)
    if x_label != "tokens seen":
        trace_x, trace_loss = [], []  # on an epoch axis, token positions cannot be placed

    def padded(values: list) -> list:
        return values + [None] * (n - len(values))

    loss, heldout_loss, perplexity = padded(loss), padded(heldout_loss), padded(perplexity)
    if len(trace_x) < 2 and n < 2:
        return None, _single_point_note(x[0], x_label, loss[0], heldout_loss[0], perplexity[0])
    softmax = str(_dict(encoder.get("config")).get("softmax") or "")
    return {"x": x, "x_label": x_label, "trace_x": trace_x, "trace_loss": trace_loss,
            "loss": loss, "heldout_loss": heldout_loss, "heldout_perplexity": perplexity,
            "softmax": softmax}, None


# --------------------------------------------------------------------------------------------
# Stages 2 to 4: word vectors, distillation, supervised training
# --------------------------------------------------------------------------------------------

def word_vectors_stage(meta: dict, config: dict) -> dict[str, Any] | None:
    """The PPMI + SVD word-vector start (None for random or encoder word vectors)."""
    init = _dict(meta.get("embedding_init"))
    method = init.get("method") or config.get("embedding_init")
    if method not in ("ppmi_svd", "svd"):
        return None
    reviews, unlabeled = _count(init.get("reviews")), _count(init.get("unlabeled_reviews"))
    window, dim = _count(config.get("svd_window")), _count(config.get("embedding_dim"))
    return {
        "key": "word-vectors",
        "title": "Word vectors",
        "text": ("Before any training, each word's vector was set from how often words occur "
                 "near each other in the training and unlabeled reviews (positive pointwise "
                 "mutual information, reduced by a truncated SVD). Validation and test reviews "
                 "were not used."),
        "facts": _facts(
            ("Method", _joined("PPMI + SVD", window and f"window of {window} words",
                               dim and f"{dim} dimensions")),
            ("Reviews", _joined(reviews, unlabeled and f"({unlabeled} of them unlabeled)", sep=" ")),
            ("Time", _seconds(init.get("seconds"))),
        ),
    }


def distillation_stage(distillation: Any) -> dict[str, Any] | None:
    """The distillation stage from meta["distillation"] (None when there was none)."""
    if not distillation:
        return None
    d = {"teacher": distillation} if isinstance(distillation, str) else _dict(distillation)
    if d.get("skipped"):  # meta.json keeps the reason; the report lists stages that ran
        return None
    unlabeled, labeled = _count(d.get("unlabeled_reviews")), _count(d.get("labeled_reviews"))
    pieces = _count(d.get("short_pieces"))
    accuracy = _number(d.get("teacher_validation_accuracy"))
    targets = d.get("targets")
    return {
        "key": "distillation",
        "title": "Distillation",
        "text": ("A teacher model scored reviews, and this network was trained to give the "
                 "teacher's answers."),
        "facts": _facts(
            ("Teacher", d.get("teacher")),
            ("Teacher's validation accuracy", accuracy is not None and f"{accuracy:.1%}"),
            ("Reviews the teacher scored", _joined(unlabeled and f"{unlabeled} unlabeled",
                                                   pieces and f"{pieces} short pieces",
                                                   labeled and f"{labeled} labeled", sep=" + ")),
            ("Targets", targets and TARGETS.get(str(targets), str(targets))),
        ),
    }


def lexicon_stage(term: Any) -> dict[str, Any] | None:
    """The lexicon term's stage from meta["lexicon_term"] (None when the model has none)."""
    d = _dict(term)
    if not d:
        return None
    words, weight, rating = _count(d.get("words")), _number(d.get("weight")), _number(d.get("rating_weight"))
    return {
        "key": "lexicon",
        "title": "Sentiment lexicon",
        "text": ("A score from a sentiment word list, and from any rating the review states "
                 "(\"7/10\", \"five stars\"), is added to the network's score before calibration. "
                 "It counts most on short reviews, where the network is weakest."),
        "facts": _facts(
            ("Lexicon", _joined(d.get("lexicon"), words and f"{words} of the model's words",
                                sep="; ")),
            ("Weight", weight is not None and f"{weight:g}"),
            ("Stated ratings", rating and f"weight {rating:.2f}, learned from the training "
                                          "reviews that state one"),
            ("Long reviews", _ngram_fact(d.get("ngram_term"))),
        ),
    }


def _ngram_fact(record: Any) -> str | None:
    """The n-gram term's line (model/ngram_term.py): what it is and from how many words on."""
    d = _dict(record)
    ngrams, min_words = _count(d.get("ngrams")), _number(d.get("min_words"))
    if not d or not ngrams or min_words is None:
        return None
    source = str(d.get("source") or "a regression on n-grams of the training labels")
    return f"from {min_words:g} known words on, an n-gram term is added too: {source} ({ngrams} n-grams)"


def _clause_text(trouble: bool, limit: bool, subject: bool = False, unmet: bool = False) -> str:
    rules = ["the clause after \"but\" counts most",
             "a negated opinion verb (\"I wouldn't say the food was great\") turns the clause after it"]
    if trouble:
        rules.append("a denied trouble (\"no complaints\", \"not rude at all\") takes the trouble "
                     "word's reading back out")
    if limit:
        rules.append("a limit reached (\"couldn't be happier\") counts the words after the negation")
    if subject:
        rules.append("a negated subject (\"nobody was helpful\") turns what is said of it")
    if unmet:
        rules.append("a comparison left unmet (\"could have been better\") turns the comparative")
    listed = ", ".join(rules[:-1]) + ", and " + rules[-1] if len(rules) > 2 else " and ".join(rules)
    return (f"On a short review, {listed}; {'all' if len(rules) > 2 else 'both'} are read from the "
            "network's scores of the clauses.")


def clause_stage(record: Any) -> dict[str, Any] | None:
    """The clause rules' stage from meta["clause_rules"] (None when the model has none)."""
    d = _dict(record)
    if not d:
        return None
    contrast, verbs = d.get("contrast_words"), d.get("opinion_verbs")
    c_words, n_words = _number(d.get("contrast_max_words")), _number(d.get("negation_max_words"))
    after = _number(d.get("after_share"))
    trouble, t_words = d.get("trouble_words"), _number(d.get("trouble_max_words"))
    t_weight = _number(d.get("trouble_weight"))
    limit, l_words = d.get("comparatives"), _number(d.get("limit_max_words"))
    l_mix = _number(d.get("limit_mix"))
    subject, s_words = d.get("subject_negators"), _number(d.get("subject_max_words"))
    s_mix = _number(d.get("subject_mix"))
    unmet, u_words = d.get("unmet_modals"), _number(d.get("unmet_max_words"))
    u_mix = _number(d.get("unmet_mix"))
    return {
        "key": "clauses",
        "title": "Clause rules for short reviews",
        "text": _clause_text(bool(trouble and t_weight), bool(limit and l_words and l_mix),
                             bool(subject and s_words and s_mix), bool(unmet and u_words and u_mix)),
        "facts": _facts(
            ("Contrast", isinstance(contrast, list) and c_words and _joined(
                ", ".join(f'"{w}"' for w in contrast),
                f"reviews up to {c_words:g} words",
                after is not None and f"the clause after it weighs {after:g}", sep="; ")),
            ("Negated opinion verbs", isinstance(verbs, list) and n_words and _joined(
                ", ".join(str(v) for v in verbs[:8]) + (", ..." if len(verbs) > 8 else ""),
                f"reviews up to {n_words:g} words", sep="; ")),
            ("Denied trouble", isinstance(trouble, list) and trouble and t_words and t_weight and _joined(
                ", ".join(str(v) for v in trouble[:8]) + (", ..." if len(trouble) > 8 else ""),
                f"reviews up to {t_words:g} words", f"weight {t_weight:g}", sep="; ")),
            ("Limit reached", isinstance(limit, list) and limit and l_words and l_mix and _joined(
                "\"couldn't be happier\", \"can't recommend it enough\"",
                f"reviews up to {l_words:g} words", f"the words after the negation weigh {l_mix:g}",
                sep="; ")),
            ("Negated subject", isinstance(subject, list) and subject and s_words and s_mix and _joined(
                "\"nobody was helpful\", \"no one was rude\"", f"reviews up to {s_words:g} words",
                f"what is said of the subject weighs {s_mix:g}, turned", sep="; ")),
            ("Unmet comparison", isinstance(unmet, list) and unmet and u_words and u_mix and _joined(
                "\"could have been better\", \"I expected better\"", f"reviews up to {u_words:g} words",
                f"the comparative's words weigh {u_mix:g}, turned", sep="; ")),
        ),
    }


def _schedule_text(encoder: dict, config: dict) -> str | None:
    tuning = _dict(encoder.get("fine_tuning"))
    head = _number(tuning.get("head_epochs", config.get("finetune_head_epochs")))
    rate = _number(tuning.get("encoder_lr_multiplier", config.get("encoder_lr_multiplier")))
    if head is None or rate is None:
        return None
    every = f"all layers, the encoder's at {rate:g} x the learning rate"
    if not head:
        return f"{every} from the first epoch"
    return f"{_plural(head, 'epoch')} training only the layers above the LSTM, then {every}"


def _sizes_text(meta: dict) -> str | None:
    sizes = _dict(meta.get("sizes"))
    fit, val, test = (_count(sizes.get(k)) for k in ("train", "validation", "test"))
    split = meta.get("validation_split")
    return _joined(fit and f"{fit} to learn from",
                   val and f"{val} to validate{f' ({split})' if split else ''}",
                   test and f"{test} to test")


def _validation_text(meta: dict) -> str | None:
    metrics = _dict(meta.get("validation_metrics"))
    accuracy, n = _number(metrics.get("accuracy")), _count(metrics.get("n"))
    if accuracy is None:
        return None
    return f"{accuracy:.1%} accuracy" + (f" on {n} reviews" if n else "")


def training_stage(meta: dict, config: dict, encoder: dict | None) -> dict[str, Any]:
    """The supervised stage: fine-tuning from the encoder, or training from scratch."""
    epochs, best = _count(meta.get("epochs_run")), _count(meta.get("best_epoch"))
    members = _number(meta.get("ensemble_size", config.get("ensemble_size")))
    ensemble = None if members is None else (
        "one network" if members == 1
        else f"{members:g} networks with their own seeds; the model averages their scores")
    text = ("The classifier, starting from the pretrained encoder, learned the labels."
            if encoder else "The classifier learned the labels starting from random weights"
            + (" and the word vectors above." if word_vectors_stage(meta, config) else "."))
    return {
        "key": "fine-tuning" if encoder else "training",
        "title": "Fine-tuning" if encoder else "Supervised training",
        "text": text + " The loss and accuracy curves show this stage, epoch by epoch.",
        "facts": _facts(
            ("Labeled data", meta.get("data_source")),
            ("Reviews", _sizes_text(meta)),
            ("Epochs", _joined(epochs and f"{epochs} run",
                               best and f"the weights after epoch {best} kept")),
            ("Schedule", encoder and _schedule_text(encoder, config)),
            ("Ensemble", ensemble),
            ("Network", _network_text(config, language_model=False)),
            ("Validation", _validation_text(meta)),
            ("Device and time", _joined(meta.get("device"), _seconds(meta.get("train_seconds")))),
        ),
    }


def _pct(value: Any) -> str | None:
    number = _number(value)
    return None if number is None else f"{number:.1%}"


def adaptation_stage(adaptation: dict) -> dict[str, Any]:
    """Fine-tuning a trained model on a user's labels (review_scorer.training.adapt), both models' numbers."""
    start, adapted = _dict(adaptation.get("start_metrics")), _dict(adaptation.get("adapted_metrics"))
    folds, labels = _count(adaptation.get("folds")), _count(adaptation.get("labels"))
    per_class = _dict(adaptation.get("per_class"))
    return {
        "key": "adaptation",
        "title": "Adapted to your labels",
        "text": adaptation.get("verdict") or "The starting model was fine-tuned on your labels.",
        "facts": _facts(
            ("Starting model", adaptation.get("start_model")),
            ("Labels", _joined(labels, per_class and (
                f"({per_class.get('positive', 0):,} positive, {per_class.get('negative', 0):,} "
                "negative)"), sep=" ")),
            ("Measured by", folds and f"{folds}-fold cross-validation: both models scored on the "
                                      "same held-out labels"),
            ("Starting model's accuracy", _joined(_pct(start.get("accuracy")),
                                                  _number(start.get("f1")) is not None
                                                  and f"F1 {start['f1']:.3f}")),
            ("Adapted model's accuracy", _joined(_pct(adapted.get("accuracy")),
                                                 _number(adapted.get("f1")) is not None
                                                 and f"F1 {adapted['f1']:.3f}")),
            ("At your file's class mix", _mix_accuracies(start, adapted)),
            ("Class mix assumed", _class_mix(_dict(adaptation.get("class_mix")))),
            ("Rounds of fine-tuning kept", _count(adaptation.get("epochs"))),
            ("Advice", adaptation.get("advice")),
        ),
    }


def _mix_accuracies(start: dict, adapted: dict) -> str | None:
    before, after = _pct(start.get("mix_accuracy")), _pct(adapted.get("mix_accuracy"))
    return before and after and f"starting model {before}, adapted {after}"


def _class_mix(mix: dict) -> str | None:
    """How common positive reviews were taken to be (review_scorer.training.adapt.ClassMix)."""
    share, unlabeled = _number(mix.get("positive")), _count(mix.get("unlabeled"))
    if share is None:
        return None
    if mix.get("method") in ("EM", "adjusted count"):  # "adjusted count": models adapted before EM
        return (f"{share:.0%} positive, estimated from the {unlabeled} rows without a label "
                "(the starting model's scores there, calibrated on your labels, and drawn toward "
                "your labels' share by the estimate's standard error)")
    if mix.get("method") == "labels sample":
        return (f"{share:.0%} positive, as in your labels, taken for a random sample of your file "
                "because they are far from balanced")
    because = f" ({mix['note']})" if mix.get("note") else ""
    return f"{share:.0%} positive, as in your labels{because}"


def _headline(meta: dict, encoder: dict | None, stages: list[dict]) -> str:
    labeled = _count(_dict(meta.get("sizes")).get("train"))
    keys = {stage["key"] for stage in stages}
    learned = _joined(labeled and f"{labeled} labeled reviews",
                      "distillation" in keys and "a teacher model's scores", sep=" and ")
    on_labels = f" on {learned}" if learned else ""
    if encoder:
        corpus = _dict(encoder.get("corpus"))
        reviews, seen = _count(corpus.get("reviews_used")), _count(_tokens_seen(encoder))
        epochs = _number(encoder.get("epochs"))
        detail = _joined(seen and f"{seen} tokens", epochs is not None and _plural(epochs, "epoch"),
                         sep=" over ")
        lm = _joined(f"on {reviews} reviews" if reviews else None, detail and f"({detail})", sep=" ")
        return f"Pretrained as a language model{f' {lm}' if lm else ''}, then fine-tuned{on_labels}."
    vectors = ""
    if "word-vectors" in keys:
        used = _count(_dict(meta.get("embedding_init")).get("reviews"))
        vectors = f", word vectors from PPMI + SVD{f' on {used} reviews' if used else ''}"
    return f"{FROM_SCRATCH[0].upper()}{FROM_SCRATCH[1:]}{on_labels}{vectors}."


def model_provenance(meta: dict, config: dict) -> dict[str, Any]:
    """How the model was made: its stages in the order they ran, a one-line headline, and the
    language model's curve (see the module comment for the shape)."""
    meta, config = _dict(meta), _dict(config)
    adaptation = _dict(meta.get("adaptation"))
    if adaptation:
        stages = [adaptation_stage(adaptation), clause_stage(meta.get("clause_rules")),
                  lexicon_stage(meta.get("lexicon_term"))]
        return {"from_scratch": False, "stages": [s for s in stages if s], "lm_curve": None,
                "lm_note": None,
                "headline": f"Fine-tuned from {adaptation.get('start_model') or 'a trained model'} "
                            f"on {_count(adaptation.get('labels')) or 'your'} labeled reviews."}
    encoder = _dict(meta.get("pretrained_encoder")) or None
    stages = [pretraining_stage(encoder) if encoder else word_vectors_stage(meta, config),
              distillation_stage(meta.get("distillation")),
              training_stage(meta, config, encoder), clause_stage(meta.get("clause_rules")),
              lexicon_stage(meta.get("lexicon_term"))]
    stages = [stage for stage in stages if stage]
    curve, note = language_model_curve(encoder) if encoder else (None, None)
    return {"from_scratch": encoder is None, "headline": _headline(meta, encoder, stages),
            "stages": stages, "lm_curve": curve, "lm_note": note}
