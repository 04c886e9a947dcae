"""Shared pytest fixtures (fineq_tb is importable through pytest's ``pythonpath = ["tb"]``)."""

import pytest


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory):
    """A tiny random LLaMA folder (2 layers, hidden 64) with a character tokenizer, and a text for it."""
    pytest.importorskip("transformers")
    from tiny_llm import TEXT, make_tiny_llama

    folder = make_tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")
    text = folder.parent / "text.txt"
    text.write_text(TEXT)
    return folder, text
