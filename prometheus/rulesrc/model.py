"""The rule model and the YAML writer behind ``prometheus/build.py``.

Definitions are settings-free templates: the scrape job names appear in exprs and header
comments as ``$collector_job`` and ``$worker_job`` (``string.Template`` placeholders; PromQL has
no ``$``), and every alert's ``runbook_url`` is added at render time as
``<runbook base>#<alert name lowercased>``. Both come from ``Settings``, which build.py reads
from pyproject.toml.

The writer emits one fixed layout (comments, ``|`` blocks for multi-line exprs, ``>-`` blocks
for descriptions) so the output is deterministic and diffs stay readable, and it checks that
the YAML it wrote loads back to exactly the rule data.
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass
from string import Template

import yaml

SEVERITIES = ("critical", "warning", "info")
# Job names go into `job="..."` and `job=~"a|b"`: no quoting or regex metacharacters.
JOB_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Settings:
    """Everything the rules take from outside: [project.urls] Repository and
    [tool.liqstress.prometheus] in pyproject.toml (docs/observability.md, "Scrape jobs and
    runbook links")."""

    runbook_base: str  # e.g. https://github.com/liqstress/liqstress/blob/main/docs/runbook.md
    collector_job: str
    worker_job: str

    def __post_init__(self) -> None:
        for job in (self.collector_job, self.worker_job):
            if not JOB_NAME_RE.fullmatch(job):
                raise ValueError(f"scrape job name {job!r} must match {JOB_NAME_RE.pattern}")
        if self.collector_job == self.worker_job:
            raise ValueError("the collector and worker scrape jobs must differ")
        if "#" in self.runbook_base:
            raise ValueError(f"runbook base {self.runbook_base!r} must not contain '#'")

    def fill(self, text: str) -> str:
        """Substitute $collector_job and $worker_job; any other $name is an error."""
        return Template(text).substitute(
            collector_job=self.collector_job, worker_job=self.worker_job
        )

    def runbook_url(self, alert: str) -> str:
        return f"{self.runbook_base}#{alert.lower()}"


@dataclass(frozen=True)
class Record:
    """A recording rule. ``comment`` is written as YAML comment lines above it."""

    record: str
    expr: str
    comment: str = ""


@dataclass(frozen=True)
class Alert:
    """An alerting rule with the house style: one ``severity`` label, a static ``summary``, a
    templated ``description`` (written folded, so its line breaks become spaces) and a
    generated ``runbook_url``. ``comment`` goes above the rule, ``note`` under its name."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    note: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Section:
    """A ``# ---- title ----`` separator between rules of a group."""

    title: str


@dataclass(frozen=True)
class Group:
    name: str
    rules: tuple[Record | Alert | Section, ...]
    interval: str | None = None


@dataclass(frozen=True)
class RuleFile:
    """One generated file in prometheus/rules/. ``header`` becomes its leading comment;
    ``source`` names the module that defines it (for the "generated" notice)."""

    name: str
    header: str
    groups: tuple[Group, ...]
    source: str


def text(value: str) -> list[str]:
    """The lines of a triple-quoted definition string, dedented, without blank ends."""
    lines = textwrap.dedent(value).strip("\n").splitlines()
    return [line.rstrip() for line in lines]


def _expr(value: str, settings: Settings) -> str:
    """A one-line definition stays one line; a triple-quoted one (it contains a line break)
    becomes a ``|`` block, whose value ends with a line break."""
    lines = text(settings.fill(value))
    if not lines or any(not line.strip() for line in lines):
        raise ValueError(f"empty expr or blank line in expr: {value!r}")
    return "\n".join(lines) + "\n" if "\n" in value else lines[0]


def _description_lines(value: str) -> list[str]:
    lines = text(value)
    for line in lines:
        # A blank or more-indented line would change how the folded block joins lines.
        if not line or line[0].isspace():
            raise ValueError(f"description lines must be non-blank and flush left: {value!r}")
    return lines


def _rule_data(rule: Record | Alert, settings: Settings) -> dict:
    if isinstance(rule, Record):
        return {"record": rule.record, "expr": _expr(rule.expr, settings)}
    if rule.severity not in SEVERITIES:
        raise ValueError(f"{rule.alert}: severity {rule.severity!r}")
    return {
        "alert": rule.alert,
        "expr": _expr(rule.expr, settings),
        "for": rule.for_,
        "labels": {"severity": rule.severity},
        "annotations": {
            "summary": rule.summary,
            "description": " ".join(_description_lines(rule.description)),
            "runbook_url": settings.runbook_url(rule.alert),
        },
    }


def data(rule_file: RuleFile, settings: Settings) -> dict:
    """The rule file as Prometheus reads it (what the written YAML must load to)."""
    groups = []
    for group in rule_file.groups:
        out: dict = {"name": group.name}
        if group.interval:
            out["interval"] = group.interval
        out["rules"] = [
            _rule_data(r, settings) for r in group.rules if not isinstance(r, Section)
        ]
        groups.append(out)
    return {"groups": groups}


def _scalar(value: str) -> str:
    """A one-line value: plain when YAML reads it back unchanged, else double-quoted."""
    try:
        if value == value.strip() and yaml.safe_load(f"k: {value}\n") == {"k": value}:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value)


def _comment(value: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" if line else f"{indent}#" for line in text(value)]


def _write_expr(expr: str, out: list[str]) -> None:
    if "\n" in expr:
        out.append("        expr: |")
        out.extend("          " + line for line in expr.splitlines())
    else:
        out.append("        expr: " + _scalar(expr))


def _write_rule(rule: Record | Alert, settings: Settings, out: list[str]) -> None:
    rule_data = _rule_data(rule, settings)
    out.extend(_comment(rule.comment, "      "))
    if isinstance(rule, Record):
        out.append("      - record: " + _scalar(rule.record))
        _write_expr(rule_data["expr"], out)
        return
    out.append("      - alert: " + _scalar(rule.alert))
    out.extend(_comment(rule.note, "        "))
    _write_expr(rule_data["expr"], out)
    out.append("        for: " + _scalar(rule.for_))
    out.append("        labels:")
    out.append("          severity: " + _scalar(rule.severity))
    out.append("        annotations:")
    out.append("          summary: " + _scalar(rule.summary))
    out.append("          description: >-")
    out.extend("            " + line for line in _description_lines(rule.description))
    out.append("          runbook_url: " + _scalar(rule_data["annotations"]["runbook_url"]))


def render(rule_file: RuleFile, settings: Settings) -> str:
    """The YAML text of one rule file; raises if it would not load back to ``data()``."""
    out = [
        f"# Generated by prometheus/build.py from {rule_file.source}: edit that file, then",
        "# run `python prometheus/build.py` (`--check` tells whether this file is up to date).",
        "#",
    ]
    out.extend(_comment(settings.fill(rule_file.header), ""))
    out += ["", "groups:"]
    for i, group in enumerate(rule_file.groups):
        if i:
            out.append("")
        out.append("  - name: " + _scalar(group.name))
        if group.interval:
            out.append("    interval: " + _scalar(group.interval))
        out.append("    rules:")
        for j, rule in enumerate(group.rules):
            if j:
                out.append("")
            if isinstance(rule, Section):
                out.append(f"      # ---- {rule.title} ----")
            else:
                _write_rule(rule, settings, out)
    result = "\n".join(out) + "\n"
    if yaml.safe_load(result) != data(rule_file, settings):
        raise AssertionError(f"{rule_file.name}: the written YAML does not load back to the rules")
    return result
