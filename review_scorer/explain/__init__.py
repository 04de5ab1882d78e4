"""Word attributions for single reviews and the drivers of a whole file."""
