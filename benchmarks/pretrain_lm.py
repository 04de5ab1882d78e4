"""Pretrain the encoder on the IMDB archive (resumable), recording tokens/s and perplexity; or time softmaxes.

    python benchmarks/pretrain_lm.py --data ../shared/data/aclImdb_v1.tar.gz --out encoders/imdb \
        --set '{"epochs": 4}' --time-limit-min 60 --write-results
    python benchmarks/pretrain_lm.py --softmax-speed --write-results

Running the first command again after an interruption continues from the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _results import markdown_table, write_section

from review_scorer.config import PretrainConfig


def _printer(every_s: float):
    last = [0.0]

    def show(event) -> None:
        now = time.perf_counter()
        if event.stage != "training" or now - last[0] >= every_s or event.step == event.steps:
            last[0] = now
            if event.stage == "training":
                print(f"epoch {event.epoch}/{event.epochs} step {event.step}/{event.steps} "
                      f"loss {event.loss:.3f} {event.tokens_per_s:,.0f} tokens/s "
                      f"ETA {event.eta_s / 60:.1f} min", flush=True)
            else:
                print(f"[{event.stage}] epoch {event.epoch}", flush=True)
    return show


def pretrain(args) -> None:
    from review_scorer.training.pretrain import run_pretraining

    config = PretrainConfig.from_dict({**PretrainConfig().to_dict(), **json.loads(args.set)})
    started = time.perf_counter()
    result = run_pretraining(config, source=args.data, output_dir=args.out,
                             progress=_printer(30.0), name=args.name, init_from=args.init_from,
                             time_limit_s=args.time_limit_min * 60 if args.time_limit_min else None)
    wall = time.perf_counter() - started
    h = result.history
    print(json.dumps({"completed": result.completed, "epochs_done": result.epochs_done,
                      "tokens_per_s": round(result.tokens_per_s), "history": h,
                      "corpus": result.corpus, "train_seconds": round(result.train_seconds),
                      "wall_seconds_this_call": round(wall)}, indent=1), flush=True)
    if args.write_results:
        write_pretrain_section(Path(args.out))


def write_pretrain_section(encoder_dir: Path) -> None:
    """The RESULTS.md section for a saved encoder, from its own meta.json and history."""
    from review_scorer.model.encoder import load_encoder_dir

    chain = [load_encoder_dir(encoder_dir)]
    while chain[0].meta.get("initialized_from"):  # earlier runs this one continued from
        chain.insert(0, load_encoder_dir(chain[0].meta["initialized_from"]["path"]))
    encoder = chain[-1]
    meta, corpus = encoder.meta, encoder.meta["corpus"]
    rows = []
    for run, part in enumerate(chain, start=1):
        h = part.history
        rows += [[len(rows) + 1, f"{run} ({part.name}, lr {part.config.learning_rate:g})",
                  f"{h['loss'][i]:.3f}", f"{h['perplexity'][i]:.1f}",
                  f"{h['heldout_loss'][i]:.3f}", f"{h['heldout_perplexity'][i]:.1f}",
                  f"{h['tokens_per_s'][i]:,.0f}"] for i in range(len(h.get("loss", [])))]
    minutes = sum(p.meta["train_seconds"] for p in chain) / 60
    body = (
        "## Language-model pretraining of the encoder (forward + backward LSTM LMs)\n\n"
        + markdown_table(["epoch", "run (encoder, peak learning rate)", "train loss (full softmax)",
                          "train perplexity",
                          "held-out loss", "held-out perplexity", "tokens/s"], rows)
        + f"\n\nCorpus: {corpus['reviews_used']:,} reviews, {corpus['tokens']:,} tokens per "
        f"epoch ({corpus['heldout_reviews']} reviews, {corpus['heldout_tokens']:,} tokens held "
        f"out for perplexity); left out: {corpus['excluded']}. Losses are full-softmax "
        "cross-entropy in nats per token, averaged over the forward and backward models "
        "(training itself uses the sampled softmax). Settings: "
        f"`{json.dumps(encoder.config.to_dict())}`. Completed: {meta['completed']} "
        f"({len(rows)} epochs in {len(chain)} run(s), each continuing the previous one with a "
        f"fresh warm-up and decay), {minutes:.1f} min of training in all, sharing the 2 cores "
        "with other work. "
        f"Device: {meta['device']}.\n"
    )
    write_section("pretrain_lm", body)


def softmax_speed(args) -> None:
    """Training tokens/s of one LM step with a sampled softmax (several sizes) and a tied full one."""
    import keras
    import numpy as np
    import tensorflow as tf

    from review_scorer.training.pretrain import build_language_model, make_step_functions

    vocab, rows = 20000, []
    rng = np.random.default_rng(0)
    ids = np.minimum(rng.zipf(1.2, size=(64, 81)), vocab - 1).astype(np.int32)
    for name, kw in (("sampled, 512", {"num_sampled": 512}), ("sampled, 1024", {"num_sampled": 1024}),
                     ("sampled, 2048", {"num_sampled": 2048}), ("tied full softmax", {"softmax": "tied"})):
        config = PretrainConfig(**kw)
        lm = build_language_model(config, vocab)
        step, _ = make_step_functions(lm, keras.optimizers.Adam(1e-3, global_clipnorm=1.0), config)
        for i in range(3):
            step(ids, tf.constant([1, i], tf.int64))
        started = time.perf_counter()
        for i in range(args.steps):
            float(step(ids, tf.constant([1, i], tf.int64)))
        per_step = (time.perf_counter() - started) / args.steps
        rows.append([name, f"{per_step * 1000:.0f}", f"{64 * 80 / per_step:,.0f}"])
        print(rows[-1], flush=True)
    if args.write_results:
        write_section("pretrain_softmax", (
            "## Language-model softmax on this CPU (vocab 20k, BiLSTM 64, batch 64 x 80 tokens)\n\n"
            + markdown_table(["softmax", "ms per step", "training tokens/s"], rows)
            + f"\n\nMean over {args.steps} timed steps each after 3 warm-up steps, on "
            "Zipf-distributed ids. The sampled softmax draws log-uniform candidates over the "
            "frequency-sorted vocabulary (tf.nn.sampled_softmax_loss).\n"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    parser.add_argument("--out", default="encoders/imdb-lm")
    parser.add_argument("--name", default=None)
    parser.add_argument("--set", default="{}", help="JSON object of PretrainConfig overrides")
    parser.add_argument("--time-limit-min", type=float, default=None)
    parser.add_argument("--init-from", type=Path, help="continue from this encoder directory")
    parser.add_argument("--softmax-speed", action="store_true")
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--results-only", action="store_true",
                        help="write the RESULTS.md section for the finished encoder at --out")
    args = parser.parse_args()
    if args.results_only:
        write_pretrain_section(Path(args.out))
    else:
        softmax_speed(args) if args.softmax_speed else pretrain(args)


if __name__ == "__main__":
    main()
