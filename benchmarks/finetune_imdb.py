"""Compare fine-tuning from a pretrained encoder with training from scratch on IMDB, by validation.

Every run trains one network on the IMDB train split minus the product's movie-disjoint
validation slice and reports validation loss/accuracy per epoch; the NB-weighted logistic
regression baseline (Wang & Manning 2012, binary 1-3 grams) is scored on the same slice. The test
set is read only with --test (for a final candidate), and every such read is counted in the log
(benchmarks/finetune_imdb.jsonl), so RESULTS.md can say how often the test set was used.

    python benchmarks/finetune_imdb.py --encoder /tmp/encoders/imdb-lm \
        '{"name": "ft_head1_mult05", "encoder": true}' \
        '{"name": "scratch", "encoder": false}' --baseline
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
LOG = Path(__file__).resolve().parent / "finetune_imdb.jsonl"


def nb_logistic_baseline(fit_texts, y_fit, eval_texts, *, c: float = 4.0):
    """NB-weighted logistic regression on binary word 1-3 grams: feature j is scaled by the log
    ratio of its smoothed frequency in positive vs negative reviews (Wang & Manning 2012)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = CountVectorizer(ngram_range=(1, 3), binary=True, min_df=2, token_pattern=r"\S+",
                                 lowercase=False, dtype=np.float32)
    x = vectorizer.fit_transform(fit_texts)
    p = np.asarray(x[y_fit == 1].sum(0)).ravel() + 1.0
    q = np.asarray(x[y_fit == 0].sum(0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)
    model = LogisticRegression(C=c, max_iter=3000, solver="liblinear", dual=True)
    model.fit(x.multiply(r).tocsr(), y_fit)
    return [model.predict_proba(vectorizer.transform(t).multiply(r).tocsr())[:, 1] for t in eval_texts]


def prepare(data: str):
    from review_scorer.config import TrainConfig
    from review_scorer.io import load_labeled
    from review_scorer.text.cleaning import clean_text
    from review_scorer.training.splits import validation_split

    reviews = load_labeled(data)
    train = np.flatnonzero(reviews.splits == "train")
    fit, val, kind = validation_split(reviews, train, TrainConfig())
    test = np.flatnonzero(reviews.splits == "test")
    cleaned = [clean_text(t) for t in reviews.texts]
    return reviews, cleaned, fit, val, test, kind


def run(spec: dict, reviews, cleaned, fit, val, test, encoder, *, read_test: bool,
        save_dir: Path | None = None) -> dict:
    import keras

    from review_scorer.config import TrainConfig
    from review_scorer.metrics import binary_metrics, log_loss
    from review_scorer.model.network import build_model, export_model
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.cleaning import clean_text
    from review_scorer.text.vocabulary import Vocabulary, encode_cleaned
    from review_scorer.training.embeddings import ppmi_svd_embeddings
    from review_scorer.training.finetune import config_for_encoder, fit_member
    from review_scorer.training.train import _dataset

    use_encoder = spec.get("encoder", True)
    cfg = TrainConfig().replace(ensemble_size=1, **spec.get("kw", {}))
    if use_encoder:
        cfg = config_for_encoder(cfg, encoder)
        vocab = encoder.vocab
    else:
        vocab = Vocabulary.build((cleaned[i] for i in fit), max_size=cfg.vocab_size,
                                 min_count=cfg.min_count)
    y = reviews.labels

    def encode(idx):
        return [encode_cleaned(cleaned[i], vocab, max_len=cfg.max_len, truncating=cfg.truncating)
                for i in idx]

    weights = None
    if not use_encoder and cfg.embedding_init == "svd":
        corpus = [vocab.encode(cleaned[i]) for i in fit]
        corpus += [vocab.encode(clean_text(u)) for u in reviews.unlabeled]
        weights = ppmi_svd_embeddings(corpus, len(vocab), cfg.embedding_dim, seed=cfg.seed)
    keras.utils.set_random_seed(cfg.seed)
    model = build_model(cfg, len(vocab), weights)
    started = time.perf_counter()
    history = fit_member(model, _dataset(encode(fit), y[fit], cfg.batch_size, seed=cfg.seed),
                         _dataset(encode(val), y[val], 256, seed=None), cfg,
                         encoder=encoder if use_encoder else None, verbose=2)
    seconds = time.perf_counter() - started
    scorer = SentimentModel(export_model(model), vocab, cfg, history=history, name=spec["name"])
    scores = scorer.predict_ids(encode(val))
    val_metrics = binary_metrics(y[val], scores, loss=log_loss(y[val], scores))
    if save_dir is not None:  # kept so the test set can be read later for a chosen candidate
        scorer.meta = {"name": spec["name"], "validation_metrics": val_metrics, "spec": spec}
        scorer.save(save_dir / spec["name"], overwrite=True)
    row = {"name": spec["name"], "spec": spec, "fit_s": round(seconds),
           "val_loss": [round(v, 4) for v in history["val_loss"]],
           "val_acc": [round(v, 4) for v in history["val_accuracy"]],
           "final_val_acc": round(val_metrics["accuracy"], 4),
           "final_val_loss": round(val_metrics["loss"], 4)}
    if read_test:
        test_scores = scorer.predict_ids(encode(test))
        row["test_acc"] = round(binary_metrics(y[test], test_scores)["accuracy"], 4)
        row["test_read"] = True
    return row


def write_results(note: str) -> None:
    """The RESULTS.md section from every logged run, with the number of test-set reads."""
    from benchmarks._results import (
        logged_runs,
        markdown_table,
        test_cell,
        test_reads,
        validation_cells,
        write_section,
    )

    rows = logged_runs(LOG)

    def encoder_of(r: dict) -> str:
        used = r.get("encoder_dir") and r.get("spec", {}).get("encoder", False)
        return Path(r["encoder_dir"]).name if used else "—"

    table = [[r["name"], encoder_of(r), *validation_cells(r), r["fit_s"], test_cell(r)]
             for r in rows]
    reads = test_reads(rows)
    write_section("finetune_imdb", (
        "## Fine-tuning from the pretrained encoder vs the baselines (movie-disjoint validation)\n\n"
        + markdown_table(["run", "encoder", "val accuracy per epoch (%)", "saved model val acc",
                          "val loss", "fit s", "test accuracy"], table)
        + f"\n\nTest-set reads in these runs: {reads}. {note}\n"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help='JSON: {"name": ..., "encoder": true, "kw": {...}}')
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--encoder", type=Path)
    parser.add_argument("--baseline", action="store_true", help="score NB-weighted LR too")
    parser.add_argument("--test", action="store_true", help="also read the test set (counted)")
    parser.add_argument("--save-models", type=Path, help="keep each trained model here")
    parser.add_argument("--evaluate-test", type=Path, metavar="MODEL_DIR",
                        help="read the test set once for this saved candidate (counted)")
    parser.add_argument("--results-from-log", metavar="NOTE",
                        help="write the RESULTS.md section from the log (NOTE: a paragraph)")
    args = parser.parse_args()
    if args.results_from_log is not None:
        write_results(args.results_from_log)
        return
    reviews, cleaned, fit, val, test, kind = prepare(args.data)
    print(f"fit {len(fit)}, validation {len(val)} ({kind}), test {len(test)}", flush=True)
    if args.evaluate_test is not None:
        evaluate_saved(args.evaluate_test, reviews, cleaned, val, test, args)
        return
    if args.baseline:
        started = time.perf_counter()
        from review_scorer.metrics import binary_metrics

        evals = [[cleaned[i] for i in val]] + ([[cleaned[i] for i in test]] if args.test else [])
        scores = nb_logistic_baseline([cleaned[i] for i in fit], reviews.labels[fit], evals)
        row = {"name": "nb_lr_1-3grams", "fit_s": round(time.perf_counter() - started),
               "final_val_acc": round(binary_metrics(reviews.labels[val], scores[0])["accuracy"], 4)}
        if args.test:
            row["test_acc"] = round(binary_metrics(reviews.labels[test], scores[1])["accuracy"], 4)
            row["test_read"] = True
        _record(row, args)
    encoder = None
    if args.encoder:
        from review_scorer.model.encoder import load_encoder_dir

        encoder = load_encoder_dir(args.encoder)
    for spec in map(json.loads, args.runs):
        _record(run(spec, reviews, cleaned, fit, val, test, encoder, read_test=args.test,
                    save_dir=args.save_models), args)


def evaluate_saved(model_dir: Path, reviews, cleaned, val, test, args) -> None:
    """One counted read of the test set for a saved candidate (and its validation again)."""
    from review_scorer.metrics import binary_metrics
    from review_scorer.model.sentiment import SentimentModel

    model = SentimentModel.load(model_dir)
    row = {"name": f"{model.name} (saved, test read)", "fit_s": 0, "test_read": True,
           "spec": model.meta.get("spec", {})}
    for key, idx in (("final_val_acc", val), ("test_acc", test)):
        scores = model.predict(list(reviews.texts[i] for i in idx))
        row[key] = round(binary_metrics(reviews.labels[idx], scores)["accuracy"], 4)
    _record(row, args)


def _record(row: dict, args) -> None:
    """Print and log one result as soon as it exists (a later crash loses nothing)."""
    row["encoder_dir"] = str(args.encoder) if args.encoder else None
    print("RESULT", json.dumps(row), flush=True)
    with LOG.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
