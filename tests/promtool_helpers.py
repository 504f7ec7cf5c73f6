"""Write `promtool test rules` files for built rule files and run them.

Series are written in promtool's expanding notation ('0+600x60' = start at 0 and
add 600 per interval, 60 times); `_` is a missing sample, `stale` a staleness marker.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class Series:
    selector: str
    values: str


@dataclass
class AlertCheck:
    at: str  # eval_time, e.g. "30m"
    alertname: str
    firing: list[dict] = field(default_factory=list)  # [{"labels": {...}}]; empty = must be quiet


@dataclass
class ExprCheck:
    at: str
    expr: str
    samples: list[dict]  # [{"labels": '{...}', "value": 1.0}]


def holysheep_histogram(labels: str, per_interval: dict[str, float], count: float, seconds: float,
                        steps: int) -> list[Series]:
    """Cumulative bucket series of holysheep_request_latency_seconds for a steady load."""
    out = [Series(f'holysheep_request_latency_seconds_bucket{{{labels}, le="{le}"}}', f"0+{v:g}x{steps}")
           for le, v in per_interval.items()]
    out.append(Series(f"holysheep_request_latency_seconds_count{{{labels}}}", f"0+{count:g}x{steps}"))
    out.append(Series(f"holysheep_request_latency_seconds_sum{{{labels}}}", f"0+{seconds:g}x{steps}"))
    return out


def write_test_file(path: Path, rule_files: list[Path], series: list[Series], alerts: list[AlertCheck] = (),
                    exprs: list[ExprCheck] = (), interval: str = "1m", name: str = "test",
                    evaluation_interval: str | None = None, group_eval_order: list[str] = ()) -> Path:
    """`interval` spaces the input samples; rules are evaluated every `evaluation_interval`
    (default: the same), groups in `group_eval_order` first (promtool's order is otherwise random)."""
    test = {
        "interval": interval,
        "name": name,
        "input_series": [{"series": s.selector, "values": s.values} for s in series],
        "alert_rule_test": [
            {"eval_time": a.at, "alertname": a.alertname, "exp_alerts": a.firing} for a in alerts
        ],
        "promql_expr_test": [{"expr": e.expr, "eval_time": e.at, "exp_samples": e.samples} for e in exprs],
    }
    doc = {"rule_files": [str(p) for p in rule_files], "evaluation_interval": evaluation_interval or interval,
           "tests": [test]}
    if group_eval_order:
        doc["group_eval_order"] = list(group_eval_order)
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run_promtool_test(promtool: str, test_file: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"promtool test rules failed:\n{proc.stdout}\n{proc.stderr}"
    return proc
