"""prometheus/rules/topics.yml: Topic retention alerts (liqstress/infra/topic_admin.py; docs/topics.md)."""

from .model import Alert, Group, RuleFile

HEADER = """\
Topic retention alerts. The gauges come from the retention check liqstress runs at start
(liqstress/infra/topic_admin.py report_topic_retention; docs/topics.md). Unit tests:
prometheus/tests/topics_test.yml. Runbook: docs/runbook.md.

  alert                            condition                                         for  severity
  LiqStressTopicRetentionMissing   liqstress_topic_retention_missing == 1 for a      15m  warning
                                   topic (retention.ms -1 or absent, or the broker
                                   returned no configs): the topic may grow without
                                   bound. Both the collector and the worker check, so
                                   the max over instances is taken per topic. The
                                   gauge is set once at start: it stays 1 until the
                                   process restarts after the topic is fixed, and 15m
                                   keeps a rolling restart from paging.
"""

TOPICS = Group(
    'liqstress.topics',
    rules=(
        Alert(
            'LiqStressTopicRetentionMissing',
            expr='max by (topic) (liqstress_topic_retention_missing) == 1',
            for_='15m',
            severity='warning',
            summary='A liqstress topic has no retention limit.',
            description="""
                Topic {{ $labels.topic }} reports no retention limit (retention.ms is -1 or
                absent, or the broker returned no configs for it), so it may keep every record
                and grow until the broker's disk or memory runs out.
            """,
        ),
    ),
)

FILE = RuleFile("topics.yml", HEADER, (TOPICS,), source="prometheus/rulesrc/topics.py")
