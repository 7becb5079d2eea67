"""Shared fixtures: one local OpenAI-compatible server for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.openai_server import OpenAIServer


@pytest.fixture(scope="session")
def _openai_server_session() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


@pytest.fixture
def openai_server(_openai_server_session: OpenAIServer) -> Iterator[OpenAIServer]:
    """The local chat-completions server on 127.0.0.1, reset for each test."""
    _openai_server_session.reset()
    yield _openai_server_session
    _openai_server_session.reset()
