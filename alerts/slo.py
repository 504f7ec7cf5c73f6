"""Error-budget burn alerts for the service level objectives of relaywatch.yaml (slo.*).

Multi-window, multi-burn-rate: each alert fires while the error budget burns faster
than a factor over a long window and still does over a short one, so a fast burn pages
within minutes, a slow one opens a ticket, and a short blip does neither. The windows,
factors and recorded series come from provision/slo.py; docs/slo.md has the maths.
"""

from provision.config import rule_targets
from provision.contract import MODEL
from provision.rules import AlertRule, RuleGroup

NAMES = {"availability": "LLMGatewayErrorBudgetBurn", "latency": "LLMGatewayLatencyBudgetBurn"}
SUMMARIES = {
    ("availability", "page"): "LLM gateway failures are burning the error budget fast.",
    ("availability", "ticket"): "LLM gateway failures are slowly using up the error budget.",
    ("latency", "page"): "Slow LLM gateway answers are burning the latency budget fast.",
    ("latency", "ticket"): "Slow LLM gateway answers are slowly using up the latency budget.",
}
BAD = {"availability": "failed requests", "latency": "slow requests"}


def rule_groups(ctx):
    slo = ctx.slo
    if slo is None or not slo.objectives:
        return []
    alerts = [burn_rule(ctx, burn) for objective in slo.objectives for burn in slo.burn_alerts(objective)]
    if "grafana" in rule_targets(ctx.config):
        ctx.notices.append(
            "slo: Grafana evaluates the SLO burn alerts with the recording rules inlined, so every evaluation "
            "recomputes the 6h, 1d and 3d windows from raw counters (subqueries); deliver them with rules.target "
            "files or ruler on a busy gateway (docs/slo.md)")
    return [*slo.recording_groups(), RuleGroup("llm-gateway-slo-alerts", "llm-gateway-slo", tuple(alerts))]


def burn_rule(ctx, burn):
    slo, objective = ctx.slo, burn.objective
    per_model = MODEL in slo.alert_level
    who = "{{ $labels.model }} (job {{ $labels.job }})" if per_model else "Job {{ $labels.job }}"
    first, *others = burn.branches
    return AlertRule(
        name=NAMES[objective.name],
        condition=first.condition,
        guards=first.guards,
        alternatives=tuple(others),
        severity=burn.severity,
        labels=burn.labels(),
        summary=SUMMARIES[objective.name, burn.kind],
        description=(
            f"{who}: {BAD[objective.name]} are using the error budget of the {slo.period} objective "
            f"({objective.statement()}) {{{{ $value | printf \"%.1f\" }}}}x faster than sustainable over the last "
            f"{{{{ $labels.window }}}}. This {burn.kind} fires at {burn.thresholds()}."
        ),
        queried_detail=budget_left(slo.names(objective).remaining(slo.period), slo.period, per_model),
    )


def budget_left(series, period, per_model):
    """A sentence with what is left of the period's budget, queried when the alert fires."""
    matchers, args = ("job=%q, model=%q", "$labels.job $labels.model") if per_model else ("job=%q", "$labels.job")
    return (
        f'{{{{ with printf "{series}{{{matchers}}}" {args} | query }}}}'
        "{{ $left := . | first | value }}"
        f"{{{{ if gt $left 0.0 }}}}{{{{ $left | humanizePercentage }}}} of the {period} budget is left."
        f"{{{{ else }}}}The {period} budget is spent.{{{{ end }}}}{{{{ end }}}}"
    )
