"""The exploration runs behind the default preset (kept so they can be repeated).

Each run: train on 90% of the IMDB train split, early-stop on a *stratified random* 10%
(same-movie) validation slice, print validation loss/accuracy per epoch and, for the record, the
official test accuracy. This is how the candidates were first compared; the product now holds out
whole movies instead (see training/splits.py, validation_split), and benchmarks/select_defaults.py repeats the
comparison without the test set. Results append to benchmarks/explore_presets.jsonl.

    python benchmarks/explore_presets.py --data ../shared/data/aclImdb_v1.tar.gz \
        '{"name": "len600", "kw": {"max_len": 600}}' '{"name": "random", "svd": false}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
LOG = Path(__file__).resolve().parent / "explore_presets.jsonl"


def run(reviews, name: str, overrides: dict, svd: bool) -> dict:
    import keras

    from review_scorer.config import TrainConfig
    from review_scorer.metrics import binary_metrics
    from review_scorer.model.network import build_model
    from review_scorer.model.sentiment import SentimentModel
    from review_scorer.text.cleaning import clean_text
    from review_scorer.text.vocabulary import Vocabulary, encode_cleaned
    from review_scorer.training.embeddings import ppmi_svd_embeddings
    from review_scorer.training.splits import stratified_split
    from review_scorer.training.train import _dataset

    cfg = TrainConfig().replace(ensemble_size=1, embedding_init="svd" if svd else "random",
                                **overrides)
    keras.utils.set_random_seed(cfg.seed)
    y = reviews.labels
    train, test = np.flatnonzero(reviews.splits == "train"), np.flatnonzero(reviews.splits == "test")
    fit_pos, val_pos = stratified_split(y[train], cfg.validation_fraction, cfg.seed)
    fit, val = train[fit_pos], train[val_pos]
    cleaned = [clean_text(t) for t in reviews.texts]
    vocab = Vocabulary.build((cleaned[i] for i in fit), max_size=cfg.vocab_size, min_count=cfg.min_count)

    def encode(idx):
        return [encode_cleaned(cleaned[i], vocab, max_len=cfg.max_len, truncating=cfg.truncating)
                for i in idx]

    weights = None
    if svd:
        corpus = [vocab.encode(cleaned[i]) for i in fit]
        corpus += [vocab.encode(clean_text(u)) for u in reviews.unlabeled]
        weights = ppmi_svd_embeddings(corpus, len(vocab), cfg.embedding_dim, seed=cfg.seed)
    model = build_model(cfg, len(vocab), weights)
    callbacks = [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if cfg.ema_momentum > 0 else []
    callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.patience,
                                                   restore_best_weights=True))
    started = time.perf_counter()
    history = model.fit(_dataset(encode(fit), y[fit], cfg.batch_size, seed=cfg.seed),
                        validation_data=_dataset(encode(val), y[val], 256, seed=None),
                        epochs=cfg.epochs, callbacks=callbacks, verbose=2, shuffle=False).history
    fit_seconds = time.perf_counter() - started
    test_metrics = binary_metrics(y[test], SentimentModel(model, vocab, cfg).predict_ids(encode(test)))
    best = int(np.argmin(history["val_loss"]))
    return {"name": name, "cfg": overrides, "svd": svd, "epochs": len(history["loss"]),
            "best_epoch": best + 1, "val_acc": [round(v, 4) for v in history["val_accuracy"]],
            "val_loss": [round(v, 4) for v in history["val_loss"]], "fit_s": round(fit_seconds),
            "test_acc": test_metrics["accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help='JSON: {"name": ..., "kw": {...}, "svd": true}')
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    args = parser.parse_args()
    from review_scorer.io import load_labeled

    reviews = load_labeled(args.data)
    for spec in args.runs:
        spec = json.loads(spec)
        row = run(reviews, spec["name"], spec.get("kw", {}), spec.get("svd", True))
        print("RESULT", json.dumps(row), flush=True)
        with LOG.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
