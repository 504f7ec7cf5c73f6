"""Alerts for the failure modes of an LLM API gateway.

Thresholds and `for` durations come from relaywatch.yaml (alerts.*). Ratio
alerts stay quiet below alerts.min_request_rate so a handful of requests at
night cannot page anyone. Every alert has a section in docs/runbooks.md.
"""

from provision.contract import FAILED, LATENCY, RATE_LIMITED, REQUESTS, UNAUTHORIZED
from provision.promql import histogram_quantile, sum_by
from provision.rules import AlertRule, Condition, Query, RuleGroup

PER_MODEL = "{{ $labels.model }} (job {{ $labels.job }})"


def rule_groups(ctx):
    n, a = ctx.names, ctx.config.alerts
    window = ctx.config.rules["window"]
    busy = Condition(ctx.recorded(n.requests, REQUESTS), ">", a["min_request_rate"])

    def ratio_alert(name, role, threshold, for_, severity, summary, what):
        return AlertRule(
            name=name,
            condition=Condition(ctx.recorded(n.outcome_ratio(role), role, REQUESTS), ">", threshold),
            guards=(busy,),
            for_=for_,
            severity=severity,
            summary=summary,
            description=f"{PER_MODEL}: {{{{ $value | humanizePercentage }}}} of requests {what} over the "
                        f"last {window}; the threshold is {threshold:.0%}.",
        )

    error = a["error_ratio"]
    p95 = a["latency_p95"]
    quantile = histogram_quantile(0.95, sum_by(("job", "model", "le"), n.latency_buckets))
    rules = [
        ratio_alert("LLMGatewayErrorRatioHigh", FAILED, error["critical"], error["critical_for"], "critical",
                    "Many LLM gateway requests are failing.", "failed (5xx, timeout or client-side error)"),
        ratio_alert("LLMGatewayErrorRatioHigh", FAILED, error["warning"], error["warning_for"], "warning",
                    "LLM gateway requests are failing more than usual.",
                    "failed (5xx, timeout or client-side error)"),
        AlertRule(
            name="LLMGatewayLatencyP95High",
            condition=Condition(ctx.recorded(quantile, LATENCY), ">", p95["threshold_seconds"]),
            guards=(busy,),
            for_=p95["for"],
            severity="warning",
            summary="A model answers slowly.",
            description=f"P95 latency of {PER_MODEL} is {{{{ $value | humanizeDuration }}}} over the last "
                        f"{window}, above {p95['threshold_seconds']:g}s.",
        ),
        ratio_alert("LLMGatewayRateLimited", RATE_LIMITED, a["rate_limited_ratio"]["threshold"],
                    a["rate_limited_ratio"]["for"], "warning",
                    "The upstream API is rate-limiting the gateway.", "were refused with 429 Too Many Requests"),
        ratio_alert("LLMGatewayAuthFailures", UNAUTHORIZED, a["auth_failure_ratio"]["threshold"],
                    a["auth_failure_ratio"]["for"], "critical",
                    "The upstream API rejects the gateway's API key.", "were refused with 401 Unauthorized"),
        metrics_absent(ctx),
        AlertRule(
            name="LLMGatewayTargetDown",
            condition=Condition(Query("up"), "==", 0),
            guards=(Condition(ctx.recorded(f"last_over_time({n.gateway_jobs}[{a['target_down']['lookback']}])",
                                           REQUESTS), ">", 0, match_on=("job",)),),
            for_=a["target_down"]["for"],
            severity="critical",
            summary="Prometheus cannot scrape a gateway metrics endpoint.",
            description="{{ $labels.instance }} of job {{ $labels.job }} has not answered scrapes for "
                        f"{a['target_down']['for']}: the exporter is down or unreachable.",
        ),
        AlertRule(
            name="LLMGatewayTrafficStopped",
            condition=Condition(ctx.recorded(n.job_requests, REQUESTS), "==", 0),
            guards=(Condition(ctx.recorded(f"max_over_time({n.job_requests}[{a['traffic_stopped']['lookback']}])",
                                           REQUESTS), ">", a["min_request_rate"]),),
            for_=a["traffic_stopped"]["for"],
            severity="critical",
            summary="The LLM gateway stopped serving requests.",
            description="Job {{ $labels.job }} has served no requests for "
                        f"{a['traffic_stopped']['for']} after serving traffic within the last "
                        f"{a['traffic_stopped']['lookback']}.",
        ),
    ]
    return [RuleGroup("llm-gateway-alerts", "llm-gateway-alerts", tuple(rules))]


def metrics_absent(ctx):
    selector = ctx.raw_selector(REQUESTS)
    job = ctx.config.selector.get("job")
    where = " of job {{ $labels.job }}" if job else ""
    series = ctx.profile.role(REQUESTS).series if selector.available else "request"
    return AlertRule(
        name="LLMGatewayMetricsAbsent",
        condition=Condition(Query(f"absent({selector.expr})", requires=selector.requires, missing=selector.missing)
                            if selector.available else selector, "==", 1),
        for_=ctx.config.alerts["metrics_absent"]["for"],
        severity="critical",
        summary="The gateway's request metrics are missing.",
        description=f"Prometheus has had no {series} series{where} for {ctx.config.alerts['metrics_absent']['for']}: "
                    "the exporter is not scraped, not running, or its metric names changed.",
    )

