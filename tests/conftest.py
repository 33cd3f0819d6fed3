from __future__ import annotations

from collections.abc import Iterator

import pytest

from liqstress.infra.broker import EmbeddedBroker


@pytest.fixture(autouse=True)
def _private_data_dir(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`liqstress run` keeps a journal under its data dir and refills the embedded broker
    from it: every test (and every process it spawns) gets its own, never the user's."""
    monkeypatch.setenv("LIQSTRESS_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    """A fresh embedded Tansu broker (memory storage) per test."""
    with EmbeddedBroker() as b:
        yield b
