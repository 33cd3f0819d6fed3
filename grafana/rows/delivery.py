"""Pipeline health beyond the sources: delivery to Kafka, the embedded broker and its journal,
topic retention, and the workers (partitions, aggregator) per instance."""

from __future__ import annotations

from panels import (
    Q,
    Row,
    Settings,
    by_name,
    by_regexp,
    fixed,
    increase_bars,
    sel,
    stat,
    table,
    timeseries,
    value_map,
)

from rows.flow import INCREASE_INTERVAL

UP = {"color": fixed("blue").mode("thresholds"), "steps": (("red", None), ("green", 1)),
      "background": True}


def delivery_row(cfg: Settings) -> Row:
    return Row(
        "Delivery, broker and topics",
        stat("Kafka sink up",
             "1 while the broker accepts the collector's records (per collector instance); 0 "
             "from the first failed connect or send until a send succeeds again.",
             [Q(f"max by (instance) ({sel('liqstress_sink_up')})", "{{instance}}")],
             unit="none", mappings=[value_map(("0", "down", "red"), ("1", "up", "green"))],
             w=6, h=5, **UP),
        timeseries("Publish backlog",
                   "Records accepted by each collector and not yet acknowledged by the broker "
                   "(bounded: the oldest are dropped when full).",
                   [Q(f"max by (instance) ({sel('liqstress_publish_backlog_records')})",
                      "{{instance}}")], unit="short", soft_min=0, w=9, h=5),
        increase_bars("Records sent and dropped per topic",
                      "Records acknowledged by the broker and records given up unsent, per "
                      "topic and bar interval; the legend sums them over the time range.",
                      [Q("sum by (topic) (increase("
                         f"{sel('liqstress_publish_sent_total')}[$__interval]))",
                         "{{topic}} sent"),
                       Q("sum by (topic) (increase("
                         f"{sel('liqstress_publish_dropped_total')}[$__interval]))",
                         "{{topic}} dropped")],
                      unit="short", interval=INCREASE_INTERVAL, w=9, h=5,
                      overrides=[by_regexp(".* dropped$", custom__transform="negative-Y")]),
        stat("Embedded broker",
             "1 while the embedded broker (liqstress run / broker) runs and has been refilled "
             "from its journal; absent with an external Kafka.",
             [Q(f"max by (instance) ({sel('liqstress_broker_up')})", "{{instance}}")],
             unit="none", mappings=[value_map(("0", "down", "red"), ("1", "up", "green"))],
             w=6, h=6, **UP),
        timeseries("Embedded broker memory",
                   "Resident memory of the embedded broker against its recycle threshold and "
                   "documented cap (docs/storage.md).",
                   [Q(f"max by (instance) ({sel('liqstress_broker_resident_memory_bytes')})",
                      "{{instance}} resident"),
                    Q(f"max({sel('liqstress_broker_recycle_threshold_bytes')})",
                      "recycle threshold"),
                    Q(f"max({sel('liqstress_broker_memory_cap_bytes')})", "cap")],
                   unit="bytes", soft_min=0, legend="list", calcs=None, w=9, h=6,
                   overrides=[by_regexp("^(recycle threshold|cap)$", custom__lineStyle={
                       "fill": "dash", "dash": [10, 10]})]),
        table("Topic retention",
              "Retention of each topic as the broker reports it; \"missing\" 1 when the topic "
              "has no known retention limit (LiqStressTopicRetentionMissing).",
              [Q(f"max by (topic) ({sel('liqstress_topic_retention_seconds')})"),
               Q(f"max by (topic) ({sel('liqstress_topic_retention_missing')})")],
              columns={"topic": "Topic", "Value #A": "Retention", "Value #B": "Missing"},
              overrides=[by_name("Retention", unit="s"), by_name("Missing", unit="none")],
              sort_by=("Topic", False), w=9, h=6),
    )


def workers_row(cfg: Settings) -> Row:
    return Row(
        "Workers",
        stat("Ready per worker",
             "liqstress_worker_ready per instance: 1 once the worker has rebuilt every "
             "partition it owns and reaches the broker.",
             [Q(f"max by (instance) ({sel('liqstress_worker_ready')})", "{{instance}}")],
             unit="none", mappings=[value_map(("0", "rebuilding", "red"),
                                              ("1", "ready", "green"))], w=8, h=6, **UP),
        timeseries("Partitions per worker",
                   "liquidations partitions each worker owns, ready or rebuilding (after a "
                   "start or a rebalance), and which worker is the aggregator (right axis).",
                   [Q(f"sum by (instance, state) ({sel('liqstress_worker_partitions')})",
                      "{{instance}} {{state}}"),
                    Q(f"max by (instance) ({sel('liqstress_aggregator_active')})",
                      "{{instance}} aggregator")],
                   unit="none", soft_min=0, w=16, h=6,
                   overrides=[by_regexp(".* aggregator$", custom__axisPlacement="right",
                                        min=0, max=1, custom__drawStyle="bars",
                                        custom__fillOpacity=20)]),
    )
