"""The network: its layers and building, the CPU fast path, the model directory, SentimentModel."""
