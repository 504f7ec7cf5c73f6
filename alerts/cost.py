"""Cost alerts: spend on pace to exceed the monthly budget, and a sudden token spike per model.

Budget pace: the average spend rate of the last alerts.spend_over_budget.window
(default 6h, long enough to ride out the daily peak) projected over a whole
calendar month, against cost.monthly_budget_usd. Only built when a budget is set.

Token spike: a model's token rate (prompt + completion, last rate window)
against its own average over alerts.token_spike.baseline (default 3h). The
baseline ends a rate window plus `for` before now: a spike needs at most a
window to show in the rate and `for` to fire, so it is not yet part of its own
baseline when the alert would fire. It fires when the rate is `factor` times
the baseline and above
`min_tokens_per_second`, so a quiet model picking up modest traffic stays
quiet; a model with no baseline yet (new in the baseline window) is not compared.
Tokens, not spend, so that models missing from the price table are covered too.
"""

from provision.contract import COMPLETION_TOKENS, PROMPT_TOKENS
from provision.promql import duration, duration_seconds
from provision.rules import AlertRule, Condition, RuleGroup

PER_MODEL = "{{ $labels.model }} (job {{ $labels.job }})"


def rule_groups(ctx):
    rules = [token_spike(ctx)]
    budget = ctx.setting("cost.monthly_budget_usd")
    if budget:
        rules.append(spend_over_budget(ctx, budget))
    return [RuleGroup("llm-gateway-cost-alerts", "llm-gateway-alerts", tuple(rules))]


def spend_over_budget(ctx, budget):
    settings = ctx.setting("alerts.spend_over_budget")
    return AlertRule(
        name="LLMGatewaySpendOverBudget",
        condition=Condition(ctx.cost_queries(dashboard=False).monthly_pace(settings["window"]), ">", budget),
        for_=settings["for"],
        severity="warning",
        summary="LLM spend is on pace to exceed the monthly budget.",
        description=f"At the average spend rate of the last {settings['window']}, a month would cost "
                    f"{{{{ $value | printf \"%.0f\" }}}} USD; the budget is {budget:g} USD.",
    )


def token_spike(ctx):
    settings = ctx.setting("alerts.token_spike")
    n = ctx.names
    now = n.model_tokens
    offset = duration(duration_seconds(n.window) + duration_seconds(settings["for"]))
    baseline = f"avg_over_time({now}[{settings['baseline']}] offset {offset})"
    return AlertRule(
        name="LLMGatewayTokenSpike",
        condition=Condition(ctx.recorded(f"{now} / {baseline}", PROMPT_TOKENS, COMPLETION_TOKENS), ">",
                            settings["factor"]),
        guards=(Condition(ctx.recorded(now, PROMPT_TOKENS, COMPLETION_TOKENS), ">",
                          settings["min_tokens_per_second"]),),
        for_=settings["for"],
        severity="warning",
        summary="A model's token usage jumped far above its recent level.",
        description=f"{PER_MODEL} uses {{{{ $value | printf \"%.1f\" }}}} times its average token rate of the "
                    f"previous {settings['baseline']}: a retry loop, a runaway agent or a new client. "
                    "Check who sends it before the bill does.",
    )
