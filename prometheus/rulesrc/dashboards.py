"""prometheus/rules/dashboards.yml: recording rules for queries that several dashboard panels use.

The record names are a contract with the Grafana dashboards (grafana/build.py): rename one only
together with the panels that read it. Each has a promql_expr_test in
prometheus/tests/dashboards_test.yml.
"""

from .model import Group, Record, RuleFile

HEADER = """\
Recording rules for dashboard queries used by several panels (grafana/build.py reads these
names; keep them). Unit tests: prometheus/tests/dashboards_test.yml.

They keep the job label, so the dashboards' `job` variable ($collector_job, $worker_job;
docs/observability.md, "Scrape jobs and runbook links") selects one deployment, and drop
instance: each worker exports the window gauges for the partitions it owns, so the sum (for
the largest liquidation, the max) over a job's workers is the true figure. Several
deployments under one job would be added up; give each its own job name.
"""

RECORDS = Group(
    "liqstress.dashboards",
    interval="15s",
    rules=(
        Record(
            "job_exchange_side_window:liqstress_window_liquidated_usd:sum",
            comment="""
                USD liquidated per exchange, side and rolling window, summed over the workers.
            """,
            expr="sum by (job, exchange, side, window) (liqstress_window_liquidated_usd)",
        ),
        Record(
            "job_exchange_side_window:liqstress_window_liquidations:sum",
            comment="""
                Number of liquidations per exchange, side and rolling window, summed over the workers.
            """,
            expr="sum by (job, exchange, side, window) (liqstress_window_liquidations)",
        ),
        Record(
            "job_exchange_side_window:liqstress_window_largest_liquidation_usd:max",
            comment="""
                Largest single liquidation per exchange, side and rolling window: the largest any
                worker saw.
            """,
            expr="max by (job, exchange, side, window) (liqstress_window_largest_liquidation_usd)",
        ),
        Record(
            "job:liqstress_stress_index:max",
            comment="""
                Composite stress index (0-100) per job. Only the aggregator exports it; the max keeps
                one series per job when a failover briefly leaves two.
            """,
            expr="max by (job) (liqstress_stress_index)",
        ),
    ),
)

FILE = RuleFile("dashboards.yml", HEADER, (RECORDS,), source="prometheus/rulesrc/dashboards.py")
