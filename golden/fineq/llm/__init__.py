"""Models and evaluation (layer 5): loading LLMs, the corpus, perplexity, a quantizer applied to a whole model,
whole-model files, activations capture, the int8-activation path, real weights from files."""
