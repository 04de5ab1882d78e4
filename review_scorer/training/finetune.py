"""Fit one classifier member, from scratch or fine-tuned from a pretrained encoder (head first, then all)."""

from __future__ import annotations

from typing import Any

from review_scorer.config import TrainConfig
from review_scorer.model.encoder import Encoder


def config_for_encoder(config: TrainConfig, encoder: Encoder) -> TrainConfig:
    """The training config with the encoder's shape: its vocabulary size, embedding and LSTM
    widths, bidirectional, and the embedding taken from the encoder (no SVD start)."""
    return config.replace(
        vocab_size=len(encoder.vocab), embedding_dim=encoder.config.embedding_dim,
        lstm_units=encoder.config.lstm_units, bidirectional=True, embedding_init="encoder",
    )


def with_encoder(encoder, config: TrainConfig) -> tuple[Encoder | None, TrainConfig]:
    """(the loaded encoder, the config fitted to it) from an Encoder, an encoder directory, or
    None (train from scratch: config unchanged)."""
    if encoder is None:
        return None, config
    if not isinstance(encoder, Encoder):
        from review_scorer.model.encoder import load_encoder_dir

        encoder = load_encoder_dir(encoder)
    return encoder, config_for_encoder(config, encoder)


def encoder_meta(encoder: Encoder | None, config: TrainConfig) -> dict[str, Any] | None:
    """What a model's meta.json records under "pretrained_encoder" (None: trained from scratch)."""
    if encoder is None:
        return None
    return {**encoder.summary(), "fine_tuning": {
        "head_epochs": config.finetune_head_epochs,
        "encoder_lr_multiplier": config.encoder_lr_multiplier,
    }}


def _callbacks(config: TrainConfig, *, early_stopping: bool) -> list:
    import keras

    callbacks = []
    if config.ema_momentum > 0:
        # Before EarlyStopping: validation and the saved "best weights" are the averaged ones.
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    if early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True))
    return callbacks


def fit_member(model, train_data, val_data, config: TrainConfig, *, encoder: Encoder | None = None,
               extra_callbacks=(), verbose: int = 0) -> dict[str, list[float]]:
    """Fit one built classifier and return its per-epoch history (early-stopped on val_loss).

    With an encoder: its embedding and LSTM weights are copied in; the first
    config.finetune_head_epochs epochs train only the layers above the LSTM, then every layer
    trains, the encoder's at learning_rate x encoder_lr_multiplier (ULMFiT's gradual unfreezing
    and discriminative rates, Howard & Ruder 2018, reduced to two stages).
    """
    from review_scorer.model.network import compile_classifier, copy_encoder_weights, set_encoder_trainable

    def fit(epochs: int, early_stopping: bool, initial_epoch: int = 0):
        return model.fit(train_data, validation_data=val_data, epochs=epochs,
                         initial_epoch=initial_epoch, shuffle=False, verbose=verbose,
                         callbacks=[*_callbacks(config, early_stopping=early_stopping),
                                    *extra_callbacks]).history

    if encoder is None:
        return _floats(fit(config.epochs, True))
    copy_encoder_weights(model, encoder.weights)
    head_epochs = min(config.finetune_head_epochs, config.epochs)
    history: dict[str, list[float]] = {}
    if head_epochs:
        set_encoder_trainable(model, False)
        compile_classifier(model, config)
        history = _floats(fit(head_epochs, False))
    if head_epochs < config.epochs:
        set_encoder_trainable(model, True)
        compile_classifier(model, config, encoder_multiplier=config.encoder_lr_multiplier)
        later = _floats(fit(config.epochs, True, initial_epoch=head_epochs))
        history = {k: history.get(k, []) + later.get(k, []) for k in {*history, *later}}
    return history


def _floats(history: dict) -> dict[str, list[float]]:
    return {k: [float(v) for v in values] for k, values in history.items()}
