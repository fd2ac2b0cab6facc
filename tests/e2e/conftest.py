"""Fixtures shared by the end-to-end tests: a local GitHub server and a local
OpenAI-compatible model server, for the stack's processes to talk to."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fakes import openai
from tests.support.fakes.github import FakeGitHub
from tests.support.fakes.server import ThreadedServer
from tests.support.pipeline import GITHUB_TOKEN, MODEL_KEY


@pytest.fixture
def github() -> Iterator[tuple[FakeGitHub, ThreadedServer]]:
    """A local GitHub server answering to `GITHUB_TOKEN`, with no repository yet."""
    fake = FakeGitHub(token=GITHUB_TOKEN)
    server = fake.serve()
    yield fake, server
    server.close()


@pytest.fixture
def model() -> Iterator[tuple[openai.FakeOpenAI, ThreadedServer]]:
    """A local OpenAI-compatible server answering to `MODEL_KEY`."""
    fake = openai.FakeOpenAI(api_key=MODEL_KEY)
    server = fake.serve()
    yield fake, server
    server.close()
