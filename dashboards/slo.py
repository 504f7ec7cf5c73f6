"""LLM Gateway SLOs: each objective, its current SLI, error budget and burn rates.

Built from the SLO recording rules (alerts/slo.py), so a 30-day view stays cheap.
Opens on the whole SLO period. With slo.per_model, a second row per objective
breaks the budget down by model. No objectives configured: no dashboard.
"""

from provision.panels import bargauge, row, stat, timeseries
from provision.slo import ALERT_WINDOWS, BURN_POLICIES, burn_factor, percent

SLO_UID = "llm-gateway-slo"
OVERVIEW_UID = "llm-gateway-overview"
TITLES = {"availability": "Availability", "latency": "Latency"}
BUDGET_LEFT = ((None, "red"), (0, "orange"), (0.25, "green"))
BURN_TIMESERIES_WINDOWS = ("1h", "6h", "1d", "3d")


def dashboards(ctx):
    slo = ctx.slo
    if slo is None or not slo.objectives:
        return []
    rows = []
    for objective in slo.objectives:
        rows.append(objective_row(slo, objective))
        if slo.per_model:
            rows.append(model_row(slo, objective))
    return ctx.dashboard(
        uid=SLO_UID,
        title="LLM Gateway SLOs",
        description="Service level objectives of the LLM gateway: SLI, error budget left and burn rates.",
        links=[ctx.link(OVERVIEW_UID, "Overview")],
        rows=rows,
        time_from=slo.time_range(),
    )


def objective_row(slo, objective):
    period, budget = slo.period, percent(objective.budget)
    page = burn_factor(BURN_POLICIES[0], period)
    burn = ((None, "green"), (1, "orange"), (float(page), "red"))
    good = ((None, "red"), (float(objective.target), "green"))
    return row(
        f"{TITLES[objective.name]}: {objective.statement()} over {period}",
        stat("Objective", slo.objective_query(objective), unit="percentunit", decimals=2, width=6,
             description=f"The target: {objective.statement()}, over a rolling {period}. "
                         f"The error budget is the other {budget}."),
        stat(f"SLI over {period}", slo.sli_query(objective, slo.period_window()), unit="percentunit", decimals=3,
             thresholds=good, width=6,
             description=f"Share of good requests over the last {period}; red below the objective."),
        stat("Error budget left", slo.remaining_query(objective), unit="percentunit", decimals=1,
             thresholds=BUDGET_LEFT, width=6,
             description=f"Share of the {period} error budget not yet spent; negative once it is overspent."),
        stat("Burn rate (1h)", slo.burn_rate_query(objective, "1h"), unit="suffix:x", decimals=2,
             thresholds=burn, width=6,
             description="How fast the last hour spent the budget: 1x spends exactly the budget over the "
                         f"period; {page}x over 1h (and 5m) pages."),
        timeseries("Error budget left over time", slo.remaining_query(objective, legend="{{job}}"),
                   unit="percentunit", thresholds=BUDGET_LEFT,
                   description=f"Budget burn-down: the share of the rolling {period} error budget left at each "
                               "moment. A steady slope down means a steady burn; a cliff is an incident."),
        timeseries("Burn rate", *(slo.burn_rate_query(objective, w, legend=f"{w} {{{{job}}}}")
                                  for w in BURN_TIMESERIES_WINDOWS),
                   unit="suffix:x", minimum=0, thresholds=burn,
                   description="Burn rate over the long alert windows; above 1x the budget runs out "
                               "before the period ends."),
        bargauge("Burn rate by window",
                 *(slo.burn_rate_query(objective, w, legend=w) for w in (*ALERT_WINDOWS, slo.period_window())),
                 unit="suffix:x", thresholds=burn, width=8,
                 description="Burn rate over each alert window. Pages need a long and a short window above "
                             "the factor together (1h+5m, 6h+30m), tickets likewise (1d+2h, 3d+6h)."),
        timeseries("SLI", slo.sli_query(objective, "5m", legend="5m {{job}}"),
                   slo.sli_query(objective, "1h", legend="1h {{job}}"), slo.objective_query(objective),
                   unit="percentunit", maximum=1, thresholds=good, width=16,
                   description="Share of good requests over 5m and 1h against the objective."),
    )


def model_row(slo, objective):
    by_model = "{{model}} ({{job}})"
    return row(
        f"{TITLES[objective.name]} by model",
        bargauge("Error budget left by model", slo.remaining_query(objective, per_model=True, legend=by_model),
                 unit="percentunit", thresholds=BUDGET_LEFT, width=8,
                 description=f"Share of each model's {slo.period} error budget not yet spent."),
        timeseries("Burn rate (1h) by model", slo.burn_rate_query(objective, "1h", per_model=True, legend=by_model),
                   unit="suffix:x", minimum=0, width=8,
                   description="How fast each model spent its budget over the last hour; alerts fire per model."),
        timeseries("Error budget left by model over time",
                   slo.remaining_query(objective, per_model=True, legend=by_model),
                   unit="percentunit", thresholds=BUDGET_LEFT, width=8,
                   description="Budget burn-down per model."),
    )
