"""prometheus/rules/broker.yml: Embedded-broker alerts (liqstress/infra/supervisor.py; docs/storage.md)."""

from .model import Alert, Group, RuleFile

HEADER = """\
Embedded-broker alerts: the supervised Tansu broker of `liqstress run` / `liqstress broker`
and the journal it is refilled from (liqstress/infra/supervisor.py; docs/storage.md).
Unit tests: prometheus/tests/broker_test.yml. Runbook: docs/runbook.md.

  alert                          condition                                         for  severity
  LiqStressBrokerDown            liqstress_broker_up == 0: the embedded broker     1m   critical
                                 died and is not back (a crash restart or a
                                 recycle normally takes 1-5 s, hence 1m)
  LiqStressBrokerMemoryHigh      broker resident memory > 90 % of the documented   5m   warning
                                 cap (liqstress_broker_memory_cap_bytes = recycle
                                 threshold + headroom): recycling does not bring
                                 it down, e.g. the retained history alone is that big
  LiqStressJournalDroppingHistory the journal dropped segments before their          1m   warning
                                 retention in the last hour (byte cap reached), or
                                 is over its cap: refills will miss history
"""

BROKER = Group(
    'liqstress.broker',
    rules=(
        Alert(
            'LiqStressBrokerDown',
            expr='liqstress_broker_up == 0',
            for_='1m',
            severity='critical',
            summary='The embedded broker is down and has not come back.',
            description="""
                The embedded broker supervised by {{ $labels.instance }} has been down for more
                than a minute; collectors keep records in memory and the worker is not ready.
            """,
        ),
        Alert(
            'LiqStressBrokerMemoryHigh',
            expr="""
                liqstress_broker_resident_memory_bytes > 0.9 * liqstress_broker_memory_cap_bytes
            """,
            for_='5m',
            severity='warning',
            summary='The embedded broker uses more than 90 % of its memory cap.',
            description="""
                The embedded broker of {{ $labels.instance }} uses {{ $value | humanize1024 }}B,
                more than 90 % of its documented cap; recycling is not bringing it down.
            """,
        ),
        Alert(
            'LiqStressJournalDroppingHistory',
            expr="""
                sum by (instance, job) (increase(liqstress_journal_dropped_bytes_total[1h])) > 0
                  or
                liqstress_journal_bytes > liqstress_journal_max_bytes
            """,
            for_='1m',
            severity='warning',
            summary='The broker journal is at its byte cap and drops history.',
            description="""
                The journal of {{ $labels.instance }} is at its byte cap ({{ $value | humanize1024 }}B
                dropped in the last hour, or held above the cap): a refill of the embedded broker
                (restart, crash, recycle) misses the oldest history within retention.
            """,
        ),
    ),
)

FILE = RuleFile("broker.yml", HEADER, (BROKER,), source="prometheus/rulesrc/broker.py")
