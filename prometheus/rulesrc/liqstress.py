"""prometheus/rules/liqstress.yml: the core recording rules and alerts.

Sources, worker health, the spike alerts on the window totals, and the alerts on the worker's
stress and price signals (liqstress/signals/, formulas in docs/signals.md). Pairs of alerts that
differ only in side, window or threshold are built by the helpers below, so the two halves of a
pair cannot drift apart.
"""

import re
import textwrap

from .model import Alert, Group, Record, RuleFile, Section

HEADER = """\
liqstress recording rules and alerts.

Metric contract: liqstress/infra/metrics.py. Unit tests: prometheus/tests/*.yml
(run `promtool test rules prometheus/tests/*.yml`). Runbook: docs/runbook.md.

Thresholds (the only place they are set; change the tests and docs/runbook.md with them):

  alert                          condition                                           for  severity
  LiqStressTargetDown            up == 0 for a collector or worker scrape target     2m   critical
  LiqStressSourcesMostlyDown     most venues of one collector (job + instance) have   2m   critical
                                 liqstress_source_up == 0: at least half of them and
                                 at least 2, or the only one (1 of 1, 2 of 2, 2 of 3,
                                 6 of 12 count; 1 of 2 does not). One alert instead
                                 of one LiqStressSourceDown per venue.
  LiqStressSourcesReconnecting   most venues of one collector (same count) have > 5   5m   warning
                                 reconnects in 15m; not while, or within 15m after,
                                 LiqStressSourcesMostlyDown fires (a down venue
                                 retries, and its reconnects stay in the window)
  LiqStressSourceDown            liqstress_source_up == 0, unless                     2m   warning
                                 LiqStressSourcesMostlyDown fires for its collector
  LiqStressSourceSilent          source up, but no frame of any kind for > 120 s      1m   warning
                                 (collectors ping every <= 30 s and pongs count,
                                 so 120 s is about four missed pongs)
  LiqStressSourceFlapping        > 5 reconnects in 15m for one venue while the        5m   warning
                                 others are fine: not while, or within 15m after, its
                                 own LiqStressSourceDown or LiqStressSourcesMostlyDown
                                 or LiqStressSourcesReconnecting fires
  LiqStressWorkerStale           window gauges not recomputed for > 60 s, or the      2m   critical
                                 refresh timestamp is absent (the worker recomputes
                                 every --refresh-interval, default 2 s, so 60 s is
                                 far outside normal jitter). Only while the worker
                                 is ready.
  LiqStressWorkerNotReady        liqstress_worker_ready == 0 (window rebuild from     15m  warning
                                 the liquidations topic has not finished)
  LiqStressLongLiquidationSpike  all-exchange long USD in the 1h window              2m   warning
  LiqStressShortLiquidationSpike   (resp. short) > 50e6 USD (absolute floor: 50M USD
                                 in one hour is a large but not rare cascade on the
                                 three default venues, whose feeds are sampled, so
                                 the totals are floors) AND > 3x the average of the
                                 same 1h total over the 24h ending 1h ago
                                 (spike factor 3; the 1h offset keeps the spike out of
                                 its own baseline)
  LiqStressDeadLetters           > 10 dead-lettered frames in 10m per exchange+reason 5m   warning
  LiqStressUnpriced              any unpriced event (contract metadata missing)       5m   info
                                 in the last 30m, per exchange
  LiqStressBackfillFailed        liqstress_backfill_state{state="failed"} == 1: the   5m   warning
                                 warm start could not read part of a venue's public
                                 history, so its windows are complete only from the
                                 collector's start
  LiqStressBinanceNoLiquidations binance source connected (liqstress_source_up == 1)  10m  warning
                                 at every sample of the last 2h (and already 2h ago),
                                 yet its last liquidation is > 7200 s old, or the
                                 last-liquidation timestamp stayed 0 for the whole 2h
                                 (none since the collector started). Binance only: its
                                 all-market stream is never silent for 2h, so this is
                                 the legacy (silent) route, not a quiet market.

  Stress signals (liqstress/signals/, formulas in docs/signals.md), exported by the worker:
  LiqStressLongSkew              liqstress_long_share_ratio{window="1h"} >= 0.9      5m   warning
  LiqStressShortSkew               (resp. <= 0.1, i.e. short share >= 0.9) while the
                                 all-exchange 1h total (both sides) is >= 10e6 USD
                                 (material floor: a few lopsided liquidations in a
                                 quiet hour are not a skew)
  LiqStressLiquidationSpikeSignal liqstress_spike_active == 1, per side (the worker's   2m   warning
                                 median-baseline spike: last hour >= 3x the median
                                 of the 24 hourly totals before it and >= 1M USD,
                                 signal defaults; complements the PromQL spike alerts
                                 above, which use an average baseline and a 50M floor)
  LiqStressExchangeConcentration liqstress_top2_share_ratio{window="1h"} > 0.8 with   10m  info
                                 an all-exchange 1h total >= 10e6 USD
  LiqStressCascade               liqstress_cascade_active == 1, per side (same-       1m   critical
                                 direction liquidations above the cascade threshold on
                                 >= 2 venues; the detector's own hysteresis and hold
                                 time keep it from flapping, for: 1m keeps a page for
                                 a sustained cascade)
  LiqStressCapitulation          liqstress_deleveraging_state{state="capitulation"}   5m   warning
                                 == 1 (largest hour > 50% of the last 24h)
  LiqStressStagedDeleveraging    liqstress_deleveraging_state{state="staged"} == 1    15m  info
                                 (>= 2 distinct spike waves in the last 24h)
  LiqStressStressIndexHigh       liqstress_stress_index >= 75 (level "extreme")       5m   critical
  LiqStressStressIndexElevated   liqstress_stress_index >= 50 (level "high" and       10m  warning
                                 above; also firing while StressIndexHigh fires)

  Price signals (liqstress/prices.py and liqstress/signals/ sections 6-8), exported by the
  worker from the mark-price feed; the feed's freshness is the collector's:
  LiqStressLongsNearLocalLow     liqstress_near_extreme_ratio{side="long"} >= 0.6    10m  warning
  LiqStressShortsNearLocalHigh     (resp. side="short": share of the last hour's short
                                 USD within 1% of the coin's 4 h local high) while
                                 the all-exchange 1h USD of that side is >= 20e6
                                 (material floor: most of a quiet hour's few
                                 liquidations can sit at a level by chance)
  LiqStressRangeDivergence       liqstress_divergence_active == 1, per coin (hourly   30m  info
                                 liquidations trending up while the hourly price
                                 range shrinks; the flag moves with hourly points, so
                                 30m keeps a single borderline hour from alerting)
  LiqStressBreadthWeak           liqstress_breadth_down_ratio{window="1h"} >= 0.8    15m  info
                                 with liqstress_breadth_coins{window="1h"} >= 5 (a
                                 share of one or two coins says nothing about breadth)
  LiqStressBreadthWeak24h        the same over 24h: down_ratio{window="24h"} >= 0.8   30m  info
                                 with >= 5 coins counted
  LiqStressPricesStale           price feed connected (liqstress_source_up == 1) but  5m   warning
                                 its last kept price frame is > 120 s old, or none
                                 since the collector started (timestamp 0). Binance
                                 keeps one mark-price frame per 10 s, so 120 s is
                                 about a dozen missed frames; the price signals above
                                 go stale (and then absent) without it.

  Leverage (open interest and funding; liqstress/signals/leverage.py, docs/signals.md 10):
  LiqStressOpenInterestStale     a venue's open-interest poll has not fully succeeded  5m   warning
                                 for > 300 s (polls run every 60 s, so five missed
                                 polls), or not once since the collector started
  LiqStressLeverageBuildup       liqstress_leverage_buildup_active == 1 (open        30m  info
                                 interest +5..20% over 24 h while the 24 h price
                                 range stays within 5..15%: score >= 0.5)
  LiqStressCrowdedLongs          liqstress_crowding_state{state="long_crowded"} == 1  30m  warning
  LiqStressCrowdedShorts           (resp. short_crowded): OI-weighted funding >= 0.03%
                                 per 8 h (resp. <= -0.03%) with open interest up over
                                 24 h: the paying side is crowded
  LiqStressOpenInterestCapitulation  liqstress_oi_deleveraging_state{state=           5m   warning
                                 "capitulation"} == 1 (one hourly drop run holds >=
                                 2/3 of a >= 5% fall of open interest in 24 h)
  LiqStressOpenInterestStaged    the same state "staged" (>= 2 separate drops)       15m  info
  LiqStressLiquidationMapUsdAtRisk  estimated liquidation map: USD of one side within    15m  warning
                                 2% of price >= 5% of the coin's open interest (model)

Scrape jobs: LiqStressTargetDown selects job=~"$collector_job|$worker_job" and
the worker alerts (worker health, stress and price signals) job="$worker_job". The names come
from [tool.liqstress.prometheus] in pyproject.toml and match the jobs of prometheus.yml
(docs/observability.md, "Scrape jobs and runbook links"). Scrape an all-in-one `liqstress run`
process as job $worker_job. (`liqstress collect` does not expose the worker gauges.)

The feeds are sparse: a quiet market can go many minutes without a liquidation, so no alert
fires on "no liquidations for N seconds" for a venue in general. Liveness is the collector's
own pings, whose replies update liqstress_source_last_message_timestamp_seconds. The one
exception is LiqStressBinanceNoLiquidations (Binance USD-M, 2 hours), see above.

Quiet source alerts: a collector that loses most of its venues raises one alert
(LiqStressSourcesMostlyDown or LiqStressSourcesReconnecting), not one per venue. The per-venue
alerts drop out of their own exprs while the collector-wide alert fires, read from
ALERTS{alertstate="firing"} (written by the collector-wide rule, evaluated earlier in this
group, so at the same evaluation), which lets the promtool tests show the quiet behaviour;
alertmanager/alertmanager.yml inhibits the same pairs. They key on the firing alert, not on its
condition: a condition that flips around the threshold (6 of 12 down, then 5, then 6) would
keep resetting both the per-venue and the collector-wide `for:` timers, and nothing would fire.
"""


def _fill(template: str, **params: str) -> str:
    """``template`` (dedented) with each ``<name>`` replaced by ``params[name]``: one text for
    both alerts of a pair. Every placeholder must be given and used."""
    out = textwrap.dedent(template)
    for name, value in params.items():
        if f"<{name}>" not in out:
            raise ValueError(f"<{name}> is not in {template!r}")
        out = out.replace(f"<{name}>", textwrap.dedent(value).strip("\n"))
    if left := re.findall(r"<[a-z_]+>", out):
        raise ValueError(f"unfilled {left} in {template!r}")
    return out


# "Most venues" of a collector (one scrape target: job + instance) for the collector-wide source
# alerts: at least this share of its venues (liqstress_source_up series), and at least
# MOST_VENUES_MIN of them unless it has fewer. So 1 of 1 counts (the collector collects nothing),
# 1 of 2 does not (a single venue is the per-venue alert's), 2 of 2, 2 of 3, 2 of 4, 6 of 12 do.
MOST_VENUES_SHARE = 0.5
MOST_VENUES_MIN = 2


def _most_venues(selector: str) -> str:
    """An expr whose value, per (job, instance), is how many venues ``selector`` selects,
    present only when that is "most venues" (MOST_VENUES_SHARE, MOST_VENUES_MIN)."""
    return _fill(
        """
        (
          count by (instance, job) (<selector>)
            >= on (instance, job)
          <share> * count by (instance, job) (liqstress_source_up)
        )
          and on (instance, job)
        (
          count by (instance, job) (<selector>)
            >= on (instance, job)
          clamp_max(count by (instance, job) (liqstress_source_up), <min>)
        )
        """,
        selector=selector,
        share=str(MOST_VENUES_SHARE),
        min=str(MOST_VENUES_MIN),
    )


def _liquidation_spike(side: str) -> Alert:
    """LiqStressLongLiquidationSpike / LiqStressShortLiquidationSpike: the all-exchange 1h USD
    of one side above an absolute floor (50M USD) and 3x its trailing 24h average."""
    return Alert(
        f"LiqStress{side.title()}LiquidationSpike",
        expr=_fill(
            """
            side_window:liqstress_window_liquidated_usd:sum{side="<side>", window="1h"} > 50e6
              and
            side_window:liqstress_window_liquidated_usd:sum{side="<side>", window="1h"}
              > 3 * side_window:liqstress_window_liquidated_usd:sum_avg24h_offset1h{side="<side>", window="1h"}
            """,
            side=side,
        ),
        for_="2m",
        severity="warning",
        summary=f"{side.title()} liquidations are far above their trailing baseline.",
        description=_fill(
            """
            {{ $value | humanize }} USD of <side> positions were liquidated across all exchanges
            in the last hour, above the 50M USD floor and more than 3x the trailing 24h average
            of {{ with query "side_window:liqstress_window_liquidated_usd:sum_avg24h_offset1h{side='<side>',window='1h'}" }}{{ . | first | value | humanize }}{{ end }} USD per hour.
            """,
            side=side,
        ),
    )


def _crowded(side: str) -> Alert:
    """LiqStressCrowdedLongs / LiqStressCrowdedShorts: funding paid by one side while open
    interest grows."""
    sign, pays = ((">= 0.03%", "longs pay shorts") if side == "long"
                  else ("<= -0.03%", "shorts pay longs"))
    return Alert(
        f'LiqStressCrowded{side.title()}s',
        expr=f'liqstress_crowding_state{{job="$worker_job", state="{side}_crowded"}} == 1',
        for_='30m',
        severity='warning',
        summary=f'{side.title()}s are crowded: funding is hot while open interest grows.',
        description=f"""
            Open-interest-weighted funding is
            {{{{ with printf "liqstress_funding_rate_8h_ratio{{instance='%s',job='%s'}}" $labels.instance $labels.job | query }}}}{{{{ . | first | value | humanizePercentage }}}}{{{{ else }}}}beyond the threshold{{{{ end }}}}
            per 8 hours ({sign}: {pays}) while open interest keeps growing over 24 h:
            the {side} side is crowded, and a move against it would force it out in size.
        """,
    )


def _stress_index(
    suffix: str, threshold: int, for_: str, severity: str, adjective: str, level: str
) -> Alert:
    """LiqStressStressIndexHigh / LiqStressStressIndexElevated: the worker's composite index
    at or above a level threshold (docs/signals.md section 9); the description lists the
    three strongest components."""
    return Alert(
        f"LiqStressStressIndex{suffix}",
        expr=f'liqstress_stress_index{{job="$worker_job"}} >= {threshold}',
        for_=for_,
        severity=severity,
        summary=f"The composite leverage-stress index is {adjective}.",
        description=_fill(
            """
            The stress index on {{ $labels.instance }} is {{ printf "%.0f" $value }}/100 (threshold <threshold>,
            <level>). Strongest components (0-1):
            {{ range $i, $s := printf "sort_desc(topk(3, liqstress_stress_component_ratio{instance='%s',job='%s'} > 0))" $labels.instance $labels.job | query }}{{ if $i }}, {{ end }}{{ $s.Labels.component }} {{ printf "%.2f" $s.Value }}{{ end }}.
            """,
            threshold=str(threshold),
            level=level,
        ),
    )


# Per side: the coin's local extreme that side's liquidations cluster at, and what it means.
_NEAR_EXTREME = {
    "long": ("Longs", "Low", "are being forced out at the lows, where a breakdown can feed on itself."),
    "short": ("Shorts", "High", "are being squeezed at the highs, where a breakout can feed on itself."),
}


def _near_extreme(side: str) -> Alert:
    """LiqStressLongsNearLocalLow / LiqStressShortsNearLocalHigh: most of the last hour's USD
    of one side (coins with prices) within 1% of the coin's 4 h local low (longs) or high
    (shorts), with a material floor of 20M USD on that side's all-exchange 1h total."""
    who, extreme, meaning = _NEAR_EXTREME[side]
    params = dict(side=side, extreme=extreme.lower(), meaning=meaning)
    return Alert(
        f"LiqStress{who}NearLocal{extreme}",
        expr=_fill(
            """
            (liqstress_near_extreme_ratio{job="$worker_job", side="<side>"} >= 0.6)
              and on (side)
            (side_window:liqstress_window_liquidated_usd:sum{side="<side>", window="1h"} >= 20e6)
            """,
            side=side,
        ),
        for_="10m",
        severity="warning",
        summary=f"{side.title()} liquidations are clustering at the coins' local {extreme.lower()}s.",
        description=_fill(
            """
            {{ $value | humanizePercentage }} of the last hour's <side> liquidation USD (coins
            with prices) happened within 1% of the coin's 4 h local <extreme>{{ with printf "sort_desc(topk(3, liqstress_coin_near_extreme_ratio{instance='%s',job='%s',side='<side>'}))" $labels.instance $labels.job | query }}
            (by coin: {{ range $i, $s := . }}{{ if $i }}, {{ end }}{{ $s.Labels.coin }} {{ $s.Value | humanizePercentage }}{{ end }}){{ end }},
            with {{ with query "sum(side_window:liqstress_window_liquidated_usd:sum{side='<side>',window='1h'})" }}{{ . | first | value | humanize }}{{ end }}
            USD of <side>s liquidated across all exchanges (thresholds 60% and 20M USD): <side>s
            <meaning>
            """,
            **params,
        ),
    )


def _breadth_weak(window: str, for_: str, ago: str, tail: str) -> Alert:
    """LiqStressBreadthWeak (1h) / LiqStressBreadthWeak24h: at least 80% of the coins with a
    price are lower than ``window`` ago, counted over at least 5 coins (a share of one or two
    coins says nothing about breadth)."""
    return Alert(
        "LiqStressBreadthWeak" + ("" if window == "1h" else window),
        expr=_fill(
            """
            (liqstress_breadth_down_ratio{job="$worker_job", window="<window>"} >= 0.8)
              and on (window, instance, job)
            (liqstress_breadth_coins{job="$worker_job", window="<window>"} >= 5)
            """,
            window=window,
        ),
        for_=for_,
        severity="info",
        summary=f"Most coins are lower than {ago}.",
        description=_fill(
            """
            {{ $value | humanizePercentage }} of the
            {{ with printf "liqstress_breadth_coins{instance='%s',job='%s',window='<window>'}" $labels.instance $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ end }}
            coins with a price are lower than <tail>
            """,
            window=window,
            tail=tail,
        ),
    )


RULES = Group(
    'liqstress.rules',
    interval='15s',
    rules=(
        Record(
            'side_window:liqstress_window_liquidated_usd:sum',
            comment="""
                USD liquidated in each rolling window, summed over exchanges.
            """,
            expr='sum by (side, window) (liqstress_window_liquidated_usd)',
        ),
        Record(
            'side_window:liqstress_window_liquidated_usd:sum_avg24h_offset1h',
            comment="""
                Trailing baseline for the spike alerts: the average all-exchange 1h total over the 24h
                that ended one hour ago. Absent until the first hour of data has aged past the offset,
                so the spike alerts cannot fire during the first hour after a fresh start.
            """,
            expr='avg_over_time(side_window:liqstress_window_liquidated_usd:sum{window="1h"}[24h] offset 1h)',
        ),
        Record(
            'window:liqstress_window_liquidated_usd_long_per_total:ratio',
            comment="""
                Share of the USD liquidated in each window that was long positions (0-1). Absent while
                nothing was liquidated in the window (no 0/0 NaN).
            """,
            expr="""
                sum by (window) (liqstress_window_liquidated_usd{side="long"})
                  /
                (sum by (window) (liqstress_window_liquidated_usd) > 0)
            """,
        ),
        Record(
            'exchange_side:liqstress_liquidated_usd:rate5m',
            comment="""
                USD/s liquidated per exchange and side, from the worker's monotonic counter.
            """,
            expr='sum by (exchange, side) (rate(liqstress_liquidated_usd_total[5m]))',
        ),
    ),
)

ALERTS = Group(
    'liqstress.alerts',
    rules=(
        Alert(
            'LiqStressTargetDown',
            expr='up{job=~"$collector_job|$worker_job"} == 0',
            for_='2m',
            severity='critical',
            summary='A liqstress metrics endpoint cannot be scraped.',
            description="""
                Prometheus has failed to scrape {{ $labels.job }} at {{ $labels.instance }}
                for more than 2 minutes; its metrics (and the alerts built on them) are blind.
            """,
        ),
        Alert(
            'LiqStressSourcesMostlyDown',
            note="""
                Value: the number of venues down. Listed before the per-venue source alerts,
                which drop out while this fires (same group, evaluated in order).
            """,
            expr=_most_venues("liqstress_source_up == 0"),
            for_='2m',
            severity='critical',
            summary='Most liquidation feeds of a collector are not connected.',
            description="""
                {{ printf "%.0f" $value }} of
                {{ with printf "count(liqstress_source_up{instance='%s',job='%s'})" $labels.instance $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ end }}
                venues down on {{ $labels.instance }} ({{ $labels.job }}) for more than 2 minutes:
                {{ range $i, $s := printf "liqstress_source_up{instance='%s',job='%s'} == 0" $labels.instance $labels.job | query | sortByLabel "exchange" }}{{ if $i }}, {{ end }}{{ $s.Labels.exchange }}{{ end }}.
                With most venues down at once, suspect the collector's host, network or process
                before the venues; their LiqStressSourceDown alerts are held back meanwhile.
            """,
        ),
        Alert(
            'LiqStressSourcesReconnecting',
            note="""
                Value: the number of venues with > 5 reconnects in 15m. Not while, or within 15m
                after, LiqStressSourcesMostlyDown fires: a venue that is down retries its connects,
                and those reconnects stay in the 15m window after it is back.
            """,
            expr=_fill(
                """
                <most>
                  unless on (instance, job)
                max_over_time(ALERTS{alertname="LiqStressSourcesMostlyDown", alertstate="firing"}[15m])
                """,
                most=_most_venues("increase(liqstress_source_reconnects_total[15m]) > 5"),
            ),
            for_='5m',
            severity='warning',
            summary='Most liquidation feeds of a collector keep reconnecting together.',
            description="""
                {{ printf "%.0f" $value }} of
                {{ with printf "count(liqstress_source_up{instance='%s',job='%s'})" $labels.instance $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ end }}
                venues on {{ $labels.instance }} ({{ $labels.job }}) reconnected more than 5 times
                in the last 15 minutes
                ({{ range $i, $s := printf "increase(liqstress_source_reconnects_total{instance='%s',job='%s'}[15m]) > 5" $labels.instance $labels.job | query | sortByLabel "exchange" }}{{ if $i }}, {{ end }}{{ $s.Labels.exchange }} {{ printf "%.0f" $s.Value }}{{ end }}).
                With most venues reconnecting at once, suspect the collector's host or network
                before the venues; their LiqStressSourceFlapping alerts are held back meanwhile.
            """,
        ),
        Alert(
            'LiqStressSourceDown',
            note="""
                Not while LiqStressSourcesMostlyDown fires for the same collector (also inhibited
                in alertmanager/alertmanager.yml): one alert for a collector that lost most venues.
            """,
            expr="""
                liqstress_source_up == 0
                  unless on (instance, job)
                ALERTS{alertname="LiqStressSourcesMostlyDown", alertstate="firing"}
            """,
            for_='2m',
            severity='warning',
            summary='A liquidation feed is not connected.',
            description="""
                The {{ $labels.exchange }} websocket source on {{ $labels.instance }} has not been
                subscribed for more than 2 minutes; its liquidations are not being collected.
            """,
        ),
        Alert(
            'LiqStressSourceSilent',
            expr="""
                (time() - liqstress_source_last_message_timestamp_seconds > 120)
                  and on (exchange, instance, job)
                (liqstress_source_up == 1)
            """,
            for_='1m',
            severity='warning',
            summary='A connected liquidation feed has stopped sending frames.',
            description="""
                The {{ $labels.exchange }} source on {{ $labels.instance }} reports itself connected
                but has received no frame of any kind, not even a pong, for
                {{ $value | humanizeDuration }}.
            """,
        ),
        Alert(
            'LiqStressSourceFlapping',
            note="""
                One venue reconnecting while the others are fine. Not while, or within 15m after
                (the reconnects of an outage stay in the 15m window), its own LiqStressSourceDown
                (a down venue retries: that is down, not flapping) or a collector-wide
                LiqStressSourcesMostlyDown or LiqStressSourcesReconnecting fires (also inhibited
                in alertmanager/alertmanager.yml).
            """,
            expr="""
                increase(liqstress_source_reconnects_total[15m]) > 5
                  unless on (exchange, instance, job)
                max_over_time(ALERTS{alertname="LiqStressSourceDown", alertstate="firing"}[15m])
                  unless on (instance, job)
                max_over_time(ALERTS{alertname=~"LiqStressSourcesMostlyDown|LiqStressSourcesReconnecting", alertstate="firing"}[15m])
            """,
            for_='5m',
            severity='warning',
            summary='A liquidation feed keeps reconnecting.',
            description="""
                The {{ $labels.exchange }} source on {{ $labels.instance }} reconnected about
                {{ printf "%.0f" $value }} times in the last 15 minutes.
            """,
        ),
        Alert(
            'LiqStressWorkerStale',
            expr="""
                (
                  (time() - liqstress_window_refresh_timestamp_seconds{job="$worker_job"} > 60)
                    and on (instance, job)
                  (liqstress_worker_ready{job="$worker_job"} == 1)
                )
                or
                absent(liqstress_window_refresh_timestamp_seconds{job="$worker_job"})
            """,
            for_='2m',
            severity='critical',
            summary="The worker's window gauges are not being refreshed.",
            description="""
                liqstress_window_refresh_timestamp_seconds{{ with $labels.instance }} on {{ . }}{{ end }}
                is more than 60 seconds old or absent; the window gauges, the dashboard and the
                spike alerts show stale data.
            """,
        ),
        Alert(
            'LiqStressWorkerNotReady',
            expr='liqstress_worker_ready{job="$worker_job"} == 0',
            for_='15m',
            severity='warning',
            summary='The worker has not finished rebuilding its windows.',
            description="""
                The worker on {{ $labels.instance }} has not finished rebuilding its windows from
                the liquidations topic for more than 15 minutes.
            """,
        ),
        _liquidation_spike("long"),
        _liquidation_spike("short"),
        Alert(
            'LiqStressDeadLetters',
            expr='sum by (exchange, reason) (increase(liqstress_deadletter_total[10m])) > 10',
            for_='5m',
            severity='warning',
            summary='Frames are being sent to the dead-letter topic.',
            description="""
                About {{ printf "%.0f" $value }} {{ $labels.exchange }} frames were dead-lettered with reason
                "{{ $labels.reason }}" in the last 10 minutes.
            """,
        ),
        Alert(
            'LiqStressUnpriced',
            expr='sum by (exchange) (increase(liqstress_unpriced_total[30m])) > 0',
            for_='5m',
            severity='info',
            summary='Liquidations are being published without a USD notional.',
            description="""
                {{ $labels.exchange }}: about {{ printf "%.0f" $value }} liquidation event(s) in the
                last 30 minutes had no contract metadata, so they were published with notional_usd
                null and add 0 to the USD totals.
            """,
        ),
        Alert(
            'LiqStressBackfillFailed',
            expr='liqstress_backfill_state{state="failed"} == 1',
            for_='5m',
            severity='warning',
            summary="A venue's warm start could not read its history.",
            description="""
                {{ $labels.exchange }} on {{ $labels.instance }}: the warm start gave up on part
                of the venue's public liquidation history, so its windows are complete only from
                the collector's start (liqstress_window_coverage_missing_ratio shows how much of
                each window is missing). The live feed is not affected.
            """,
        ),
        Alert(
            'LiqStressBinanceNoLiquidations',
            note="""
                Value: seconds since the last liquidation, or 0 when there was none since the
                collector started (timestamp 0 throughout the last 2h). "Connected for 2h" is
                min_over_time == 1 (a restart or drop seen by a scrape resets it) plus a sample 2h
                ago (without it, min_over_time over a fresh series would cover minutes, not 2h).
            """,
            expr="""
                (
                  (time() - (liqstress_source_last_liquidation_timestamp_seconds{exchange="binance"} > 0)) > 7200
                  or
                  max_over_time(liqstress_source_last_liquidation_timestamp_seconds{exchange="binance"}[2h]) == 0
                )
                  and on (exchange, instance, job)
                (min_over_time(liqstress_source_up{exchange="binance"}[2h]) == 1)
                  and on (exchange, instance, job)
                (liqstress_source_up{exchange="binance"} offset 2h)
            """,
            for_='10m',
            severity='warning',
            summary='The Binance liquidation stream is connected but has delivered no liquidation for over 2 hours.',
            description="""
                The binance source on {{ $labels.instance }} has been connected for more than 2 hours
                but {{ if eq $value 0.0 }}has not received a single liquidation since the collector
                started{{ else }}received its last liquidation {{ $value | humanizeDuration }} ago{{ end }}.
                Binance USD-M liquidates something almost every minute: this is the signature of
                the legacy (silent) websocket route, not of a quiet market.
            """,
        ),
        Section('Stress signals (worker gauges; formulas in docs/signals.md)'),
        Alert(
            'LiqStressLongSkew',
            expr="""
                (liqstress_long_share_ratio{job="$worker_job", window="1h"} >= 0.9)
                  and on (window)
                (sum by (window) (side_window:liqstress_window_liquidated_usd:sum{window="1h"}) >= 10e6)
            """,
            for_='5m',
            severity='warning',
            summary='Liquidations in the last hour are overwhelmingly longs.',
            description="""
                {{ $value | humanizePercentage }} of the
                {{ with query "sum(side_window:liqstress_window_liquidated_usd:sum{window='1h'})" }}{{ . | first | value | humanize }}{{ end }}
                USD liquidated across all exchanges in the last hour were long positions (threshold
                90% with at least 10M USD): leveraged longs are being flushed while shorts are
                barely touched.
            """,
        ),
        Alert(
            'LiqStressShortSkew',
            expr="""
                (1 - liqstress_long_share_ratio{job="$worker_job", window="1h"} >= 0.9)
                  and on (window)
                (sum by (window) (side_window:liqstress_window_liquidated_usd:sum{window="1h"}) >= 10e6)
            """,
            for_='5m',
            severity='warning',
            summary='Liquidations in the last hour are overwhelmingly shorts.',
            description="""
                {{ $value | humanizePercentage }} of the
                {{ with query "sum(side_window:liqstress_window_liquidated_usd:sum{window='1h'})" }}{{ . | first | value | humanize }}{{ end }}
                USD liquidated across all exchanges in the last hour were short positions (long
                share at most 10% with at least 10M USD): leveraged shorts are being squeezed while
                longs are barely touched.
            """,
        ),
        Alert(
            'LiqStressLiquidationSpikeSignal',
            expr='liqstress_spike_active{job="$worker_job"} == 1',
            for_='2m',
            severity='warning',
            summary="The worker flags the last hour's liquidations as a spike.",
            description="""
                The {{ $labels.side }} liquidations of the last hour (all exchanges) are
                {{ with printf "liqstress_spike_multiple{instance='%s',job='%s',side='%s'}" $labels.instance $labels.job $labels.side | query }}{{ . | first | value | printf "%.1f" }}x{{ else }}a large multiple of{{ end }}
                the median of the 24 hourly totals before it (spike signal on {{ $labels.instance }},
                docs/signals.md).
            """,
        ),
        Alert(
            'LiqStressExchangeConcentration',
            expr="""
                (liqstress_top2_share_ratio{job="$worker_job", window="1h"} > 0.8)
                  and on (window)
                (sum by (window) (side_window:liqstress_window_liquidated_usd:sum{window="1h"}) >= 10e6)
            """,
            for_='10m',
            severity='info',
            summary="Two exchanges account for most of the last hour's liquidations.",
            description="""
                The two largest exchanges took {{ $value | humanizePercentage }} of the USD liquidated
                in the last hour ({{ range $i, $s := printf "sort_desc(topk(2, liqstress_exchange_share_ratio{instance='%s',job='%s',window='1h'}))" $labels.instance $labels.job | query }}{{ if $i }}, {{ end }}{{ $s.Labels.exchange }} {{ $s.Value | humanizePercentage }}{{ end }}),
                above the 80% threshold with at least 10M USD liquidated.
            """,
        ),
        Alert(
            'LiqStressCascade',
            expr='liqstress_cascade_active{job="$worker_job"} == 1',
            for_='1m',
            severity='critical',
            summary='A cross-venue liquidation cascade is under way.',
            description="""
                {{ $labels.side | title }} positions are being liquidated on at least two venues at
                once, above the cascade threshold, for more than a minute; about
                {{ with printf "liqstress_cascade_size_usd{instance='%s',job='%s',side='%s'}" $labels.instance $labels.job $labels.side | query }}{{ . | first | value | humanize }}{{ else }}an unknown amount of{{ end }}
                USD liquidated in this cascade so far.
            """,
        ),
        Alert(
            'LiqStressCapitulation',
            expr='liqstress_deleveraging_state{job="$worker_job", state="capitulation"} == 1',
            for_='5m',
            severity='warning',
            summary='The last 24 hours of liquidations look like a capitulation.',
            description="""
                One hour holds
                {{ with printf "liqstress_deleveraging_largest_hour_share_ratio{instance='%s',job='%s'}" $labels.instance $labels.job | query }}{{ . | first | value | humanizePercentage }}{{ else }}most{{ end }}
                of the USD liquidated in the last 24 hours (more than 50%, with a spike hour):
                leverage was flushed in a single wave, not in stages.
            """,
        ),
        Alert(
            'LiqStressStagedDeleveraging',
            expr='liqstress_deleveraging_state{job="$worker_job", state="staged"} == 1',
            for_='15m',
            severity='info',
            summary='Leverage is being reduced in stages.',
            description="""
                The last 24 hours of liquidations show
                {{ with printf "liqstress_deleveraging_spike_waves{instance='%s',job='%s'}" $labels.instance $labels.job | query }}{{ . | first | value | printf "%.0f" }}{{ else }}several{{ end }}
                distinct spike waves, the largest hour holding
                {{ with printf "liqstress_deleveraging_largest_hour_share_ratio{instance='%s',job='%s'}" $labels.instance $labels.job | query }}{{ . | first | value | humanizePercentage }}{{ else }}at most half{{ end }}
                of the 24 h total: staged deleveraging rather than a single capitulation.
            """,
        ),
        _stress_index("High", 75, "5m", "critical", "extreme", 'level "extreme"'),
        _stress_index("Elevated", 50, "10m", "warning", "elevated", 'level "high" or above'),
        Section('Price signals (worker gauges from the mark-price feed; docs/signals.md 6-8)'),
        _near_extreme("long"),
        _near_extreme("short"),
        Alert(
            'LiqStressRangeDivergence',
            expr='liqstress_divergence_active{job="$worker_job"} == 1',
            for_='30m',
            severity='info',
            summary='Liquidations are rising while the price range shrinks.',
            description="""
                {{ $labels.coin }}: hourly liquidations trend up
                ({{ with printf "liqstress_divergence_liquidation_trend{coin='%s',instance='%s',job='%s'}" $labels.coin $labels.instance $labels.job | query }}{{ . | first | value | humanizePercentage }}{{ else }}a rising share{{ end }}
                of their mean per hour) while the hourly price range shrinks
                ({{ with printf "liqstress_divergence_range_trend{coin='%s',instance='%s',job='%s'}" $labels.coin $labels.instance $labels.job | query }}{{ . | first | value | humanizePercentage }}{{ else }}a falling share{{ end }}
                per hour) over the last 12 hours: leverage is being flushed without the price
                moving much, which often precedes a larger move.
            """,
        ),
        _breadth_weak(
            "1h", for_="15m", ago="an hour ago",
            tail="""
                an hour ago (threshold 80% of at least 5 coins):
                a broad sell-off, not one coin's move.
            """,
        ),
        _breadth_weak(
            "24h", for_="30m", ago="a day ago",
            tail="""
                24 hours ago (threshold 80% of at least 5
                coins): a market-wide down day.
            """,
        ),
        Alert(
            'LiqStressPricesStale',
            note="""
                Value: seconds since the last kept price frame, or 0 when there was none since the
                collector started (the timestamp is set to 0 at start for venues with a price feed).
            """,
            expr="""
                (
                  (time() - (liqstress_source_last_price_timestamp_seconds > 0)) > 120
                  or
                  liqstress_source_last_price_timestamp_seconds == 0
                )
                  and on (exchange, instance, job)
                (liqstress_source_up == 1)
            """,
            for_='5m',
            severity='warning',
            summary='A connected price feed has stopped delivering prices.',
            description="""
                The {{ $labels.exchange }} source on {{ $labels.instance }} is connected but
                {{ if eq $value 0.0 }}has not kept a single price frame since the collector
                started{{ else }}kept its last price frame {{ $value | humanizeDuration }} ago{{ end }}
                (threshold 120 s); local lows/highs, clusters near them, divergence and breadth
                go stale without prices.
            """,
        ),
        Section('Leverage (open interest and funding; docs/signals.md 10)'),
        Alert(
            'LiqStressOpenInterestStale',
            note="""
                Value: seconds since the last fully successful open-interest poll, or 0 when
                there was none since the collector started.
            """,
            expr="""
                (time() - (liqstress_oi_last_success_timestamp_seconds > 0)) > 300
                or
                liqstress_oi_last_success_timestamp_seconds == 0
            """,
            for_='5m',
            severity='warning',
            summary="A venue's open-interest poll keeps failing.",
            description="""
                The {{ $labels.exchange }} open-interest and funding poll on
                {{ $labels.instance }} {{ if eq $value 0.0 }}has not succeeded once since the
                collector started{{ else }}last succeeded {{ $value | humanizeDuration }}
                ago{{ end }} (threshold 300 s, polls every 60 s): the leverage signals lose that
                venue (their coverage says so) and its open interest goes stale.
            """,
        ),
        Alert(
            'LiqStressLeverageBuildup',
            expr='liqstress_leverage_buildup_active{job="$worker_job"} == 1',
            for_='30m',
            severity='info',
            summary='Leverage is building up: open interest rises while the price stays flat.',
            description="""
                Open interest changed
                {{ with printf "liqstress_open_interest_change_ratio{instance='%s',job='%s',window='24h'}" $labels.instance $labels.job | query }}{{ . | first | value | humanizePercentage }}{{ else }}up{{ end }}
                over 24 hours while the price range stayed narrow (build-up score
                {{ with printf "liqstress_leverage_buildup_ratio{instance='%s',job='%s'}" $labels.instance $labels.job | query }}{{ . | first | value | printf "%.2f" }}{{ else }}>= 0.5{{ end }}):
                new leveraged positions are being opened without a move to show for it.
            """,
        ),
        _crowded("long"),
        _crowded("short"),
        Alert(
            'LiqStressOpenInterestCapitulation',
            expr='liqstress_oi_deleveraging_state{job="$worker_job", state="capitulation"} == 1',
            for_='5m',
            severity='warning',
            summary='Open interest collapsed in one wave.',
            description="""
                Open interest fell
                {{ with printf "liqstress_oi_deleveraging_decline_ratio{instance='%s',job='%s'}" $labels.instance $labels.job | query }}{{ . | first | value | humanizePercentage }}{{ else }}sharply{{ end }}
                in the last 24 hours, most of it in a single run of hourly drops: leverage was
                closed in one capitulation, not in stages.
            """,
        ),
        Alert(
            'LiqStressOpenInterestStaged',
            expr='liqstress_oi_deleveraging_state{job="$worker_job", state="staged"} == 1',
            for_='15m',
            severity='info',
            summary='Open interest is being reduced in stages.',
            description="""
                Open interest fell
                {{ with printf "liqstress_oi_deleveraging_decline_ratio{instance='%s',job='%s'}" $labels.instance $labels.job | query }}{{ . | first | value | humanizePercentage }}{{ else }}in steps{{ end }}
                over the last 24 hours in several separate drops: leverage is being reduced in
                stages, and a further drop is plausible.
            """,
        ),
        Alert(
            'LiqStressLiquidationMapUsdAtRisk',
            expr='max by (instance, job, coin, side) (liqstress_liquidation_map_usd{job="$worker_job", band="2pct"})\n'
                 '  / on (instance, job, coin) group_left\n'
                 'max by (instance, job, coin) (liqstress_coin_open_interest_usd{job="$worker_job"} > 0)\n'
                 '>= 0.05',
            for_='15m',
            severity='warning',
            summary='A large share of a coin\'s open interest would be liquidated by a 2 % move (model).',
            description="""
                The estimated liquidation map puts {{ $value | humanizePercentage }} of the
                {{ $labels.coin }} open interest in {{ $labels.side }} positions whose liquidation
                price lies within 2 % of the current price ({{ if eq $labels.side "long" }}below{{ else }}above{{ end }}
                it; threshold 5 %): a 2 % move could set off a cascade. A model, not an
                observation (docs/signals.md section 11).
            """,
        ),
    ),
)

FILE = RuleFile("liqstress.yml", HEADER, (RULES, ALERTS), source="prometheus/rulesrc/liqstress.py")
