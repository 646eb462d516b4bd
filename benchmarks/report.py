"""The run's table, JSON and PNG plot (latency p50/p99 against concurrency, ours and peers).

.venv/bin/python -m benchmarks.report benchmarks/results/run.json   # Markdown for RESULTS.md
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def median_of(samples: list[dict[str, float]], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def load_table(load: dict[str, dict[str, list[dict[str, float]]]]) -> list[str]:
    """Rows "case | server | p50 | p99 | req/s" (medians over the repetitions)."""
    lines = [f"{'case':<22}{'server':<24}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'reps':>6}"]
    for case, servers in load.items():
        for server, samples in servers.items():
            lines.append(
                f"{case:<22}{server:<24}{median_of(samples, 'p50_ms'):>9.2f}"
                f"{median_of(samples, 'p99_ms'):>9.2f}"
                f"{median_of(samples, 'throughput_rps'):>9.0f}{len(samples):>6}"
            )
    return lines


def seconds_table(title: str, samples: dict[str, list[float]]) -> list[str]:
    lines = [f"{title:<34}{'median s':>10}{'min s':>9}{'reps':>6}"]
    for name, values in samples.items():
        if values:
            lines.append(
                f"  {name:<32}{statistics.median(values):>10.3f}{min(values):>9.3f}{len(values):>6}"
            )
    return lines


def write_json(report: dict[str, Any], name: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    return path


def plot(load: dict[str, dict[str, list[dict[str, float]]]], name: str) -> Path | None:
    """p50 and p99 against concurrency (batch 1), one panel per model; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = sorted({case.split()[0] for case in load})
    colors: dict[str, str] = {}  # one colour per server on every panel
    figure, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for axis, model in zip(axes[0], models, strict=True):
        series: dict[str, list[tuple[int, float, float]]] = {}
        for case, servers in load.items():
            parts = case.split()  # "<model> b1 c8 rest"
            if parts[0] != model or parts[1] != "b1":
                continue
            concurrency = int(parts[2][1:])
            for server, samples in servers.items():
                label = server if parts[3] == "rest" else f"{server} ({parts[3]})"
                point = (concurrency, median_of(samples, "p50_ms"), median_of(samples, "p99_ms"))
                series.setdefault(label, []).append(point)
        for label, points in sorted(series.items()):
            points.sort()
            xs = [p[0] for p in points]
            color = colors.setdefault(label, f"C{len(colors)}")
            axis.plot(xs, [p[1] for p in points], marker="o", color=color, label=f"{label} p50")
            axis.plot(xs, [p[2] for p in points], marker="x", linestyle="--",
                      color=color, label=f"{label} p99")  # fmt: skip
        axis.set_title(f"{model}, batch 1")
        axis.set_xlabel("concurrent clients")
        axis.set_ylabel("latency (ms)")
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def markdown(result: dict[str, Any]) -> str:
    """RESULTS.md's tables from a run's JSON: time to first prediction, load, memory."""
    lines = ["| | median s | min s |", "|---|---:|---:|"]
    for name, values in result["time_to_first_prediction_s"].items():
        lines.append(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} |")
    lines += ["", "| case | server | p50 ms | p99 ms | req/s |", "|---|---|---:|---:|---:|"]
    for case, servers in result["load"].items():
        for index, (server, samples) in enumerate(servers.items()):
            lines.append(
                f"| {case if index == 0 else ''} | {server} | {median_of(samples, 'p50_ms'):.2f} "
                f"| {median_of(samples, 'p99_ms'):.2f} "
                f"| {median_of(samples, 'throughput_rps'):.0f} |"
            )
    lines += ["", "| | MB |", "|---|---:|"]
    for name, values in result["memory_rss_bytes"].items():
        lines.append(f"| {name} | {statistics.median(values) / 2**20:.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(markdown(json.loads(Path(sys.argv[1]).read_text())))
