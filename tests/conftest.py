from __future__ import annotations

from collections.abc import Iterator

import pytest

from liqstress.broker import EmbeddedBroker


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh embedded Tansu broker (memory storage) per test."""
    with EmbeddedBroker() as b:
        yield b
