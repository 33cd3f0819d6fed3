"""prometheus/rules/delivery.yml: Delivery alerts: the collector's Kafka sink (streams/publisher.py; docs/delivery.md)."""

from .model import Alert, Group, RuleFile

HEADER = """\
Delivery alerts: the collector's Kafka sink (streams/publisher.py KafkaSink; docs/delivery.md).
Unit tests: prometheus/tests/delivery_test.yml. Runbook: docs/runbook.md.

  alert                          condition                                         for  severity
  LiqStressSinkDown              liqstress_sink_up == 0: the broker refuses or     1m   critical
                                 cannot be reached; records wait in memory (a
                                 bounded backlog), nothing reaches the worker.
                                 NaN in a process without a sink (a worker): quiet
  LiqStressPublishBacklogGrowing more than 10000 records waiting and more than     5m   warning
                                 5 minutes ago (a healthy sink holds a few hundred
                                 at most: linger 5 ms, batches of 5000)
  LiqStressPublishDropped        any record dropped unsent in the last 10m, per    1m   critical
                                 topic (backlog full, or a record larger than the
                                 producer's request size): data is lost
"""

DELIVERY = Group(
    'liqstress.delivery',
    rules=(
        Alert(
            'LiqStressSinkDown',
            expr='liqstress_sink_up == 0',
            for_='1m',
            severity='critical',
            summary='The collector cannot deliver records to Kafka.',
            description="""
                The Kafka sink on {{ $labels.instance }} has had no record accepted by the broker
                for more than a minute; records wait in memory (liqstress_publish_backlog_records)
                and the worker sees nothing new.
            """,
        ),
        Alert(
            'LiqStressPublishBacklogGrowing',
            expr="""
                liqstress_publish_backlog_records > 10000
                  and
                liqstress_publish_backlog_records > liqstress_publish_backlog_records offset 5m
            """,
            for_='5m',
            severity='warning',
            summary='Records are piling up in the collector faster than Kafka takes them.',
            description="""
                {{ $value | humanize }} records wait in the Kafka sink on {{ $labels.instance }},
                more than 5 minutes ago; at the backlog cap the oldest are dropped.
            """,
        ),
        Alert(
            'LiqStressPublishDropped',
            expr='sum by (instance, job, topic) (increase(liqstress_publish_dropped_total[10m])) > 0',
            for_='1m',
            severity='critical',
            summary='The collector dropped records it could not deliver.',
            description="""
                About {{ printf "%.0f" $value }} records for {{ $labels.topic }} were dropped unsent
                by the Kafka sink on {{ $labels.instance }} in the last 10 minutes (backlog full
                or record too large); they are lost.
            """,
        ),
    ),
)

FILE = RuleFile("delivery.yml", HEADER, (DELIVERY,), source="prometheus/rulesrc/delivery.py")
