"""The compiled parse path (csrc/, built as liqstress.streams._fast) against the Python parsers it accelerates: the same
Outcome for every fixture frame and for 10,000 mutated frames per venue (the fuzz corpus), the
same event ids as liqstress.event for any input, and blake2b equal to hashlib's.

The extension must be built (``pip install -e .`` compiles it; scripts/test.sh installs a C
compiler where there is none): a missing build fails here instead of silently running slower."""

from __future__ import annotations

import hashlib
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liqstress.event import event_id
from liqstress.recording import RawFrame
from liqstress.streams import session as session_mod
from liqstress.streams.session import COMPILED, COMPILED_VENUES, Outcome, VenueSession
from liqstress.streams.venues import all_venue_ids, get_venue

from .test_fuzz import load_corpus, mutate

MUTATED = 10_000
SEED = 20_261_204


def test_the_extension_is_built_and_covers_its_venues() -> None:
    assert COMPILED, "liqstress.streams._fast is not built: run `pip install -e .` with a C compiler"
    assert set(COMPILED) == set(COMPILED_VENUES)
    assert set(COMPILED) <= set(all_venue_ids())


def _pair(venue: str) -> tuple[VenueSession, VenueSession]:
    """A session on the compiled path (its ``accel`` counts what it took) and a pure one."""
    fast, pure = VenueSession(get_venue(venue)), VenueSession(get_venue(venue), compiled=False)
    assert fast.accel is not None and pure.accel is None
    return fast, pure


def _same(a: Outcome, b: Outcome, frame: RawFrame) -> None:
    for name in ("kind", "events", "deadletter", "reply", "snapshot_dropped", "unpriced",
                 "prices", "open_interest", "skipped"):
        va, vb = getattr(a, name), getattr(b, name)
        if name == "deadletter" and va is not None and vb is not None:
            va, vb = dict(va), dict(vb)
        assert va == vb, f"{name} differs for {frame.data!r:.300}: {va!r:.300} != {vb!r:.300}"
        assert type(va) is type(vb), (name, type(va), type(vb))
    for ea, eb in zip(a.events, b.events, strict=True):
        assert ea.to_json() == eb.to_json()  # same bytes on the wire, field types included


@pytest.mark.parametrize("venue", sorted(COMPILED_VENUES))
def test_compiled_and_python_paths_agree_on_fixtures_and_mutations(venue: str) -> None:
    corpus = load_corpus(venue)
    fast, pure = _pair(venue)
    for frame in corpus.rest:
        assert fast.process(frame).deadletter is None and pure.process(frame).deadletter is None
    for frame in corpus.ws:
        _same(fast.process(frame), pure.process(frame), frame)
    fixture_taken = fast.accel.taken
    event_frames = sum(1 for f in corpus.ws if pure.process(f).events)
    # Every fixture frame with events is one the compiled parser recognises (it would only be
    # faster in name otherwise).
    assert fixture_taken >= event_frames > 0, (fixture_taken, event_frames)
    rng = random.Random(f"{SEED}:{venue}")
    for _ in range(MUTATED):
        frame = mutate(corpus, rng, with_bombs=False)
        if frame.is_rest:
            continue  # REST bodies never take the compiled path
        _same(fast.process(frame), pure.process(frame), frame)
    assert fast.accel.taken > fixture_taken  # mutated frames reached it too
    assert fast.accel.fallbacks > 0  # and it declined the ones it does not know


def test_a_session_without_the_extension_runs_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQSTRESS_PURE_PYTHON", "1")
    assert session_mod._compiled() == {}  # noqa: SLF001


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64))
def test_blake2b_is_hashlibs(data: bytes, size: int) -> None:
    from liqstress.streams import _fast  # type: ignore[attr-defined]
    assert _fast.blake2b_hex(data, size) == hashlib.blake2b(data, digest_size=size).hexdigest()


_text = st.text(min_size=1, max_size=40)


@settings(max_examples=400, deadline=None)
@given(_text, _text, st.floats(min_value=1e-3, max_value=1e13, allow_nan=False),
       st.sampled_from(["long", "short"]), st.floats(min_value=1e-12, max_value=1e12),
       st.one_of(st.none(), _text, st.floats(allow_nan=False, allow_infinity=False),
                 st.integers(min_value=-10**30, max_value=10**30)),
       st.one_of(st.none(), st.text(max_size=40)))
def test_event_ids_are_liqstress_event_ids(exchange: str, symbol: str, ts: float, side: str,
                                           price: float, qty: Any, venue_id: Any) -> None:
    from liqstress.streams import _fast  # type: ignore[attr-defined]
    try:
        expected = event_id(exchange, symbol, ts, side, price, qty, venue_id)
    except UnicodeEncodeError:  # lone surrogates: the compiled path leaves these to Python
        assert _fast.event_id(exchange, symbol, ts, side, price, qty, venue_id) is None
        return
    assert _fast.event_id(exchange, symbol, ts, side, price, qty, venue_id) == expected
