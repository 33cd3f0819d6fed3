"""Plumbing shared by the collectors and the worker: Prometheus metrics, topic administration,
the embedded broker, its supervisor and journal. Above the pure core, below ``streams``,
``agents`` and ``cli``."""
