"""prometheus/rules/workers.yml: Worker-group alerts: several `liqstress worker` processes share one app id."""

from .model import Alert, Group, RuleFile

HEADER = """\
Worker-group alerts: several `liqstress worker` processes share one app id (docs/scaling.md).
Unit tests: prometheus/tests/workers_test.yml. Runbook: docs/runbook.md.

  alert                          condition                                         for  severity
  LiqStressNoAggregator          workers are up but none is the aggregator: no     2m   critical
                                 liquidation.windows, no stress.signals, no global
                                 gauges
  LiqStressSeveralAggregators    more than one worker says it is the aggregator    2m   warning
                                 (two consumer groups share an app id's topics, or
                                 a partitioned network)
"""

WORKERS = Group(
    'liqstress.workers',
    rules=(
        Alert(
            'LiqStressNoAggregator',
            expr="""
                sum by (job) (liqstress_worker_ready) > 0
                  and
                sum by (job) (liqstress_aggregator_active) == 0
            """,
            for_='2m',
            severity='critical',
            summary='No worker combines the partitions into global windows and signals.',
            description="""
                {{ $value }} workers of job {{ $labels.job }} are ready but none owns the
                partials topic's partition, so liquidation.windows, stress.signals and the stress
                gauges are not updated.
            """,
        ),
        Alert(
            'LiqStressSeveralAggregators',
            expr='sum by (job) (liqstress_aggregator_active) > 1',
            for_='2m',
            severity='warning',
            summary='More than one worker publishes the global windows and signals.',
            description="""
                {{ $value }} workers of job {{ $labels.job }} report liqstress_aggregator_active 1;
                the derived topics get interleaved snapshots.
            """,
        ),
    ),
)

FILE = RuleFile("workers.yml", HEADER, (WORKERS,), source="prometheus/rulesrc/workers.py")
