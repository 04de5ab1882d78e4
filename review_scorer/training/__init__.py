"""Making models: train, pretrain the encoder, fine-tune, adapt, distil; splits and word vectors."""
