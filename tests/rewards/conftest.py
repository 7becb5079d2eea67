"""Fixtures for reward-function tests: offline HF, a network guard, shared inputs."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

EXPENSIVE = {"semantic_relevance", "semantic_similarity"}

LONG_TEXT = " ".join(
    f"Sentence {i} explains step {i} of the procedure, with 3 concrete details and an example."
    for i in range(2500)
)

EDGE_TEXTS: dict[str, str] = {
    "empty": "",
    "whitespace": "  \n\t  ",
    "very_long": LONG_TEXT,
    "non_ascii": "Das Brot ist köstlich; 这是一个很好的回答。 Ça marche très bien, naïve café.",
    "emoji": "🙂🔥🚀 great 👍🏽 💘 😁",
    "punctuation": "?!?!... ,,, ;;; --- ***",
    "one_word": "Yes",
    "control": "tab\tnew\nline\r\nnull\x00char",
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any outbound connection attempt (reward functions must stay offline)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a reward function tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield
