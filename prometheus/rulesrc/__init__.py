"""Definitions of every file in prometheus/rules/, written out by prometheus/build.py.

One module per rule file; each exposes ``FILE`` (a ``model.RuleFile``). The YAML is generated:
edit these modules, then run ``python prometheus/build.py``.
"""

from . import broker, dashboards, delivery, liqstress, topics, workers

FILES = (
    liqstress.FILE,
    dashboards.FILE,
    delivery.FILE,
    broker.FILE,
    topics.FILE,
    workers.FILE,
)
