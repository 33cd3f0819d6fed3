"""Journal → embedded broker refill speed (liqstress/infra/supervisor.py ``refill``).

    python bench/refill.py [--events 1000000]

Writes N liquidation events (~280 B each, 4 partitions) to a fresh journal, reads them back,
refills a fresh embedded broker from it, and tails them again with the journaler. Prints the
time of each step and the broker's resident memory before and after the refill.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from liqstress.config import Topics  # noqa: E402
from liqstress.infra.broker import EmbeddedBroker  # noqa: E402
from liqstress.infra.journal import Journal  # noqa: E402
from liqstress.infra.supervisor import Journaler, journaled_specs, refill  # noqa: E402
from liqstress.infra.topic_admin import ensure_topics  # noqa: E402
from liqstress.topics import topic_specs  # noqa: E402

VALUE = (b'{"id":"binance:BTCUSDT:%d","exchange":"binance","symbol":"BTCUSDT","base":"BTC",'
         b'"quote":"USDT","market":"linear","side":"long","price":60000.5,"qty":0.5,'
         b'"notional_usd":30000.25,"ts":1700000000.123,"recv_ts":1700000000.456,"sampled":true}')


async def main(n: int) -> None:
    topics = Topics()
    with tempfile.TemporaryDirectory() as tmp:
        j = Journal(Path(tmp) / "a")
        now = int(time.time() * 1000)
        t = time.monotonic()
        for start in range(0, n, 10_000):
            j.append_many(topics.events, ((i % 4, b"binance:BTCUSDT", VALUE % i, now - n + i)
                                          for i in range(start, min(n, start + 10_000))))
        j.flush()
        print(f"journal write  {n:>9,} records {time.monotonic() - t:6.2f} s  "
              f"({j.bytes_total / 1e6:,.0f} MB)")
        t = time.monotonic()
        read = sum(1 for _ in j.replay(topics.events))
        print(f"journal read   {read:>9,} records {time.monotonic() - t:6.2f} s")
        specs = journaled_specs(topics, 4, None)
        broker = EmbeddedBroker()
        await broker.astart()
        try:
            rss0 = broker.rss_bytes() or 0
            await ensure_topics(broker.bootstrap, topic_specs(topics, 4))
            res = await refill(broker.bootstrap, j, specs)
            rss1 = broker.rss_bytes() or 0
            print(f"refill         {res.records:>9,} records {res.seconds:6.2f} s  "
                  f"({res.records / res.seconds:,.0f} records/s)")
            print(f"broker RSS     {rss0 / 2**20:,.0f} MiB -> {rss1 / 2**20:,.0f} MiB "
                  f"({(rss1 - rss0) / max(res.records, 1):,.0f} B/record)")
            tail = Journal(Path(tmp) / "b")
            journaler = Journaler(broker.bootstrap, tail, specs)
            t = time.monotonic()
            await journaler.start({})
            while sum(journaler.positions.values()) < res.records:
                await asyncio.sleep(0.05)
            print(f"journaler tail {res.records:>9,} records {time.monotonic() - t:6.2f} s")
            await journaler.stop()
        finally:
            await broker.astop()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    asyncio.run(main(ap.parse_args().events))
