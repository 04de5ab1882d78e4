"""SentimentModel: the one object that turns review texts into sentiment scores."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from review_scorer.errors import DeviceError
from review_scorer.model.native_logs import quiet_tensorflow
from review_scorer.text.batching import length_bucketed_batches, pad_batch
from review_scorer.text.vocabulary import encode_text

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_EMPTY = "empty text"
STATUS_NO_WORDS = "no words"
DEVICE_CHOICES = ("auto", "cpu", "gpu")
DEFAULT_BATCH_SIZE = 256
DEFAULT_THRESHOLD = 0.5
PREFETCH_BATCHES = 4


@dataclass
class PreparedTexts:
    """Texts turned into what the network reads: a status per text and the id sequences of the
    texts that have words (``positions`` says which texts those are)."""

    status: np.ndarray  # object array of STATUS_* strings
    positions: np.ndarray  # int64 indices of the texts with status "ok"
    sequences: list[np.ndarray]  # their int32 ids, truncated, in the order of `positions`


def select_device(device: str) -> str:
    """Apply --device before TensorFlow places any op; return a description of what runs."""
    quiet_tensorflow()
    import tensorflow as tf

    if device not in DEVICE_CHOICES:
        raise DeviceError(f"unknown device {device!r}; use one of {', '.join(DEVICE_CHOICES)}")
    gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise DeviceError(
            "--device gpu: TensorFlow sees no GPU on this machine; install the 'gpu' extra with "
            "NVIDIA drivers present, or use --device auto/cpu"
        )
    if device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError:  # TensorFlow already initialised its devices in this process
            raise DeviceError("--device cpu must be chosen before TensorFlow starts") from None
        gpus = []
    if gpus:
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        return "GPU: " + ", ".join(names)
    return "CPU"


class SentimentModel:
    """A trained sentiment classifier with its vocabulary, config and metadata.

    Load one with ``SentimentModel.load()`` (the same model ``review-scorer score`` would use),
    then ``predict(texts)`` for probabilities of "positive", or ``predict_frame(df, column)``.
    Every consumer (training's evaluation, scoring, the Ray actors, explanations, benchmarks)
    goes through this object, so text reaches the network by one path only.
    """

    def __init__(self, keras_model: Any, vocab: Any, config: Any, *, meta: dict | None = None,
                 history: dict | None = None, metrics: dict | None = None,
                 path: Path | None = None, name: str | None = None, ngram_head: Any = None,
                 lexicon: Any = None, clauses: Any = None):
        self.keras_model = keras_model
        # Contrast and negated-opinion-verb rules for short reviews (model/clauses.py).
        self.clauses = clauses
        # A sentiment lexicon's score added to the network's logit (model/lexicon.py).
        self.lexicon = lexicon
        # An n-gram model of the user's labels stacked on the network (adapted models only).
        self.ngram_head = ngram_head
        self.vocab = vocab
        self.config = config
        self.meta = dict(meta or {})
        self.history = dict(history or {})
        self.metrics = metrics
        self.path = Path(path) if path is not None else None
        self.name = name or str(self.meta.get("name") or (self.path.name if self.path else "model"))
        self._infer = None

    @property
    def adapted_from(self) -> str | None:
        """The starting model's name when this model was adapted (train --data), else None."""
        adaptation = self.meta.get("adaptation")
        start = adaptation.get("start_model") if isinstance(adaptation, dict) else None
        return str(start) if start else None

    def describe(self) -> str:
        """The model's name as the CLI and reports show it: "name (adapted from start)"."""
        start = self.adapted_from
        return self.name if start is None else f"{self.name} (adapted from {start})"

    def __repr__(self) -> str:
        return f"SentimentModel(name={self.name!r}, path={str(self.path)!r}, vocab={len(self.vocab)})"

    @classmethod
    def load(cls, path: str | Path | None = None, *, network: bool = True) -> SentimentModel:
        """Load and validate a model directory. None resolves as `score` does:
        $REVIEW_SCORER_MODEL_DIR, then ./models/imdb-lstm, then the model shipped in the package.
        network=False leaves the Keras network out (no TensorFlow): the text path and metadata."""
        from review_scorer.model.artifacts import load_model_dir, resolve_model_dir

        if network:
            quiet_tensorflow()
        bundle = load_model_dir(resolve_model_dir(path), network=network)
        return cls(bundle.model, bundle.vocab, bundle.config, meta=bundle.meta,
                   history=bundle.history, metrics=bundle.metrics, path=bundle.path,
                   name=bundle.name, ngram_head=bundle.ngram_head, lexicon=bundle.lexicon,
                   clauses=bundle.clauses)

    def save(self, directory: str | Path, *, overwrite: bool = False,
             report_html: str | None = None) -> Path:
        """Write this model as a checksummed model directory (meta.json last, atomic swap)."""
        from review_scorer.model.artifacts import REPORT_FILE, save_model_dir

        if report_html is None and self.path is not None and (self.path / REPORT_FILE).is_file():
            report_html = (self.path / REPORT_FILE).read_text(encoding="utf-8")
        meta = {k: v for k, v in self.meta.items() if k not in ("files", "format_version", "clause_rules")}
        meta["clause_rules"] = None if self.clauses is None else self.clauses.meta()
        return save_model_dir(directory, model=self.keras_model, vocab=self.vocab,
                              config=self.config, history=self.history, metrics=self.metrics,
                              meta={**meta, "name": self.name}, report_html=report_html,
                              overwrite=overwrite, ngram_head=self.ngram_head,
                              lexicon=self.lexicon)

    # ---------------------------------------------------------------- text -> ids

    def encode(self, texts: Iterable[str | None]) -> list[np.ndarray]:
        """Clean, map to ids and truncate each text (an empty array when no word is left)."""
        cfg = self.config
        return [encode_text(t, self.vocab, max_len=cfg.max_len, truncating=cfg.truncating)
                if isinstance(t, str) else np.zeros(0, np.int32) for t in texts]

    def prepare(self, texts: Sequence[str | None]) -> PreparedTexts:
        """Statuses for every text and the id sequences of those the network can read.

        A missing or blank text is "empty text"; one whose cleaning leaves no word is "no words";
        neither ever reaches the network (an all-padding row would break the masked LSTM).
        """
        status = np.full(len(texts), STATUS_OK, dtype=object)
        positions, sequences = [], []
        for i, (text, ids) in enumerate(zip(texts, self.encode(texts))):
            if not isinstance(text, str) or not text.strip():
                status[i] = STATUS_EMPTY
            elif len(ids) == 0:
                status[i] = STATUS_NO_WORDS
            else:
                positions.append(i)
                sequences.append(ids)
        return PreparedTexts(status, np.asarray(positions, dtype=np.int64), sequences)

    # ---------------------------------------------------------------- ids -> scores

    @property
    def temperature(self) -> float:
        """The calibration temperature from meta.json (1.0: the network's own probabilities)."""
        calibration = self.meta.get("calibration") or {}
        value = calibration.get("temperature", 1.0) if isinstance(calibration, dict) else 1.0
        return float(value) if isinstance(value, (int, float)) and value > 0 else 1.0

    @property
    def reads_ids(self) -> bool:
        """Whether calibrate needs the reviews' ids (clause rules, a lexicon term or an n-gram
        head)."""
        return self.lexicon is not None or self.ngram_head is not None or self.clauses is not None

    def calibrate(self, probabilities: np.ndarray, sequences: Any = None, *,
                  composed: bool = False) -> np.ndarray:
        """The network's probabilities (of `sequences`: a list of id arrays or a padded [batch,
        steps] array) made the model's scores: short reviews' clauses composed by the clause
        rules (review_scorer.model.clauses; `composed`: already done by the caller), the lexicon
        term added to their logits (review_scorer.model.lexicon), through the temperature
        (review_scorer.model.calibration), then, for a model with an n-gram head, stacked with
        the n-gram model of the same reviews' ids."""
        from review_scorer.model.calibration import apply_temperature

        if not self.reads_ids:
            return apply_temperature(probabilities, self.temperature)
        if sequences is None:
            raise ValueError(f"{self.name} reads the reviews' words beside the network: "
                             "calibrate needs the reviews' ids")
        if not isinstance(sequences, np.ndarray):  # a padded batch stays one array
            sequences = list(sequences)
        if self.clauses is not None and not composed:
            probabilities = self.clauses.compose(probabilities, sequences, self.network_scores)
        if self.lexicon is not None:
            probabilities = self.lexicon.apply(probabilities, sequences)
        calibrated = apply_temperature(probabilities, self.temperature)
        if self.ngram_head is None:
            return calibrated
        return self.ngram_head.apply(calibrated, sequences)

    @property
    def infer(self) -> Callable:
        """The traced inference function: right-padded int32 ids [batch, steps] -> probabilities."""
        if self._infer is None:
            quiet_tensorflow()
            from review_scorer.model.network import compile_inference

            self._infer = compile_inference(self.keras_model)
        return self._infer

    def network_scores(self, sequences: Sequence[np.ndarray], *,
                       batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """The network's own probabilities for non-empty id sequences, in their order (batched
        by length): before the clause rules, the lexicon term and the temperature."""
        lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
        if len(lengths) and lengths.min() == 0:
            raise ValueError("empty sequences cannot be scored")
        out = np.empty(len(lengths), dtype=np.float32)
        for batch in length_bucketed_batches(lengths, batch_size):
            out[batch] = self.infer(pad_batch([sequences[i] for i in batch])).numpy()
        return out

    def predict_ids(self, sequences: Sequence[np.ndarray], *,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Calibrated probabilities for non-empty id sequences, in their order (batched by length)."""
        return self.calibrate(self.network_scores(sequences, batch_size=batch_size), sequences)

    def predict(self, texts: str | Iterable[str | None], *,
                batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
        """Probability of positive sentiment for each text; NaN where a text has no words.

        A single string is one review, not a sequence of characters: ``predict("Great food")``
        returns an array of one score.
        """
        texts = [texts] if isinstance(texts, str) else list(texts)
        prepared = self.prepare(texts)
        scores = np.full(len(texts), np.nan, dtype=np.float32)
        if prepared.sequences:
            scores[prepared.positions] = self.predict_ids(prepared.sequences, batch_size=batch_size)
        return scores

    def predict_frame(self, frame: Any, text_column: str, *, threshold: float = DEFAULT_THRESHOLD,
                      batch_size: int = DEFAULT_BATCH_SIZE,
                      neutral_band: tuple[float, float] | None = None) -> Any:
        """A copy of a DataFrame with `sentiment`, `score` and `status` columns added.

        With `neutral_band` (low, high), a score in [low, high) is "neutral" (metrics.DecisionRule).
        """
        from review_scorer.metrics import DECIDED_NEUTRAL, DECIDED_POSITIVE, DecisionRule, sentiment_names

        rule = DecisionRule(threshold, neutral_band)
        if text_column not in frame.columns:
            raise KeyError(f"no column {text_column!r}; the columns are {list(frame.columns)}")
        texts = [v if isinstance(v, str) else None for v in frame[text_column].tolist()]
        prepared = self.prepare(texts)
        scores = np.full(len(texts), np.nan, dtype=np.float32)
        if prepared.sequences:
            scores[prepared.positions] = self.predict_ids(prepared.sequences, batch_size=batch_size)
        out = frame.copy()
        decided = rule.decide(scores, prepared.status == STATUS_OK)
        out["sentiment"] = sentiment_names(decided == DECIDED_POSITIVE, prepared.status == STATUS_OK,
                                           decided == DECIDED_NEUTRAL)
        out["score"] = rounded_scores(scores, prepared.status)
        out["status"] = prepared.status
        return out

    def predict_stream(self, items: Iterable[Any], texts_of: Callable[[Any], Sequence],
                       *, batch_size: int = DEFAULT_BATCH_SIZE, with_words: bool = False
                       ) -> Iterator[tuple]:
        """Score a stream of items (chunks of rows) with input preparation running ahead.

        Yields (item, status, scores) in input order; with `with_words`, (item, status, scores,
        (words read, of them unknown)), the counts the out-of-domain check needs, taken from
        the ids already made for the network. The next chunk is cleaned, encoded and
        batched in tf.data's prefetch thread while the network scores the current one, and at
        most a few chunks are held in memory whatever the stream's length.
        """
        pipeline = _StreamPipeline(self, items, texts_of, batch_size)
        for number, batch, ids in pipeline.dataset():
            pipeline.record(int(number), batch.numpy(), self.infer(ids).numpy())
            yield from pipeline.pop_ready(with_words)
        if pipeline.error is not None:
            raise pipeline.error
        yield from pipeline.pop_ready(with_words)


def rounded_scores(scores: np.ndarray, status: np.ndarray) -> np.ndarray:
    """Scores as written to files: float64 rounded to 6 places, NaN where not scored."""
    return np.where(status == STATUS_OK, np.round(scores.astype(np.float64), 6), np.nan)


class _StreamPipeline:
    """Prepares batches ahead of the model (in tf.data's prefetch thread) and reassembles items.

    Each item is prepared and split into length-sorted batches; the model scores the batches in
    that order, and an item is released, in input order again, once all its batches are back.
    """

    def __init__(self, model: SentimentModel, items: Iterable[Any], texts_of, batch_size: int):
        self.model, self.items, self.texts_of = model, items, texts_of
        self.batch_size = batch_size
        self.states: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()  # the producer runs in tf.data's prefetch thread
        self.error: BaseException | None = None

    def _batches(self) -> Iterator[tuple[np.int64, np.ndarray, np.ndarray]]:
        try:
            for number, item in enumerate(self.items):
                prepared = self.model.prepare(self.texts_of(item))
                lengths = np.fromiter((len(s) for s in prepared.sequences), dtype=np.int64,
                                      count=len(prepared.sequences))
                batches = length_bucketed_batches(lengths, self.batch_size)
                scores = np.full(len(prepared.status), np.nan, dtype=np.float32)
                with self.lock:
                    self.states[number] = {"item": item, "prepared": prepared, "scores": scores,
                                           "pending": len(batches)}
                for batch in batches:
                    padded = pad_batch([prepared.sequences[i] for i in batch])
                    yield np.int64(number), batch.astype(np.int64), padded
        except BaseException as exc:  # surfaced by the consumer with its own type and message
            self.error = exc

    def dataset(self):
        import tensorflow as tf

        spec = (tf.TensorSpec((), tf.int64), tf.TensorSpec((None,), tf.int64),
                tf.TensorSpec((None, None), tf.int32))
        return tf.data.Dataset.from_generator(self._batches, output_signature=spec).prefetch(
            PREFETCH_BATCHES)

    def record(self, number: int, batch: np.ndarray, scores: np.ndarray) -> None:
        with self.lock:
            state = self.states[number]
        state["scores"][state["prepared"].positions[batch]] = scores
        state["pending"] -= 1

    def pop_ready(self, with_words: bool = False) -> Iterator[tuple]:
        """Items whose every batch is scored, oldest first, stopping at the first incomplete one."""
        while True:
            with self.lock:
                if not self.states:
                    return
                first = min(self.states)
                if self.states[first]["pending"] > 0:
                    return
                state = self.states.pop(first)
            prepared, scores = state["prepared"], state["scores"]
            # The network's batches are back: the item is calibrated in one call (clause rules,
            # lexicon and n-gram terms, temperature). Per batch, their many small numpy calls
            # each waited for the GIL held by the preparing thread.
            if len(prepared.positions):
                raw = scores[prepared.positions]
                scores[prepared.positions] = self.model.calibrate(
                    raw, prepared.sequences if self.model.reads_ids else None)
            if with_words:
                from review_scorer.scoring.domain import count_words

                yield state["item"], prepared.status, scores, count_words(prepared.sequences)
            else:
                yield state["item"], prepared.status, scores
