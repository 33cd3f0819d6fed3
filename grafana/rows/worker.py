"""Worker and alerts: the Faust worker's health and the firing alerts, linked to the runbook."""

from __future__ import annotations

from panels import Q, Row, Settings, by_name, fixed, sel, stat, table, value_map


def row(cfg: Settings) -> Row:
    return Row(
        "Worker and alerts",
        stat("Worker ready",
             "1 once the worker has rebuilt its windows from the liquidations topic (max over "
             "processes: the collector exposes this gauge at 0).",
             [Q(f"max({sel('liqstress_worker_ready')})", "ready")], unit="none",
             color=fixed("blue").mode("thresholds"), steps=(("red", None), ("green", 1)),
             mappings=[value_map(("0", "rebuilding", "red"), ("1", "ready", "green"))],
             background=True, w=4, h=5),
        stat("Window refresh age",
             "Seconds since the window gauges were last recomputed. LiqStressWorkerStale fires "
             "above 60 s (the worker recomputes every 2 s by default).",
             [Q(f"time() - max({sel('liqstress_window_refresh_timestamp_seconds')})", "age")],
             unit="s", color=fixed("blue").mode("thresholds"),
             steps=(("green", None), ("orange", 15), ("red", 60)), background=True, w=4, h=5),
        stat("Events rebuilt at last start",
             "Events read back from the liquidations topic at the last (re)start.",
             [Q(f"max({sel('liqstress_worker_rebuilt_events')})", "events")], unit="short",
             color=fixed("blue"), w=4, h=5),
        table("Firing liqstress alerts",
              "Alerts currently firing; an alert name links to its section of the runbook "
              f"({cfg.runbook_url}).",
              [Q('sum by (alertname, severity, exchange) '
                 '(ALERTS{alertname=~"LiqStress.*", alertstate="firing"})')],
              overrides=[by_name("alertname", links=[{
                  "title": "Runbook: ${__data.fields.alertname}",
                  "url": cfg.runbook_url + "#${__data.fields.alertname}",
                  "targetBlank": True}])],
              w=12, h=5),
    )
