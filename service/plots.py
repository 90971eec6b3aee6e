"""Learning curves as PNG files: one matplotlib function shared by `rldojo plot`, the API's
`GET /v1/jobs/{id}/curve.png` and the benchmarks.

`learning_curve(rows, out)` takes Tune result rows (flattened, as `JobDirectory.rows` returns
them), draws one line per trial, raw (thin) and smoothed (thick), and returns exactly the points
it drew, so callers and tests can check the curve itself.

Example:
    >>> from service.plots import learning_curve
    >>> rows = [{"trial_id": "a", "num_env_steps_sampled_lifetime": s,
    ...          "env_runners/episode_return_mean": r} for s, r in [(10, -1.0), (20, 5.0)]]
    >>> drawn = learning_curve(rows, "curve.png")  # doctest: +SKIP
    >>> curves(rows)[0].y
    [-1.0, 5.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from algorithms.common import metrics

# Short axis names for the metrics a curve is usually drawn from.
LABELS = {
    metrics.EPISODE_RETURN_MEAN: "mean episode return",
    metrics.EPISODE_LEN_MEAN: "mean episode length",
    metrics.ENV_STEPS: "env steps",
    metrics.ITERATION: "training iteration",
    metrics.ENV_STEPS_PER_SECOND: "env steps / s",
    metrics.TIME_TOTAL_S: "seconds",
}


@dataclass(frozen=True)
class TrialCurve:
    """The points drawn for one trial: raw `y` and its trailing mean `smoothed`, against `x`."""

    trial_id: str
    x: list[float]
    y: list[float]
    smoothed: list[float]
    window: int
    secondary: list[float | None] | None = None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over the last `window` values (fewer at the start)."""
    out, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        out.append(total / min(index + 1, window))
    return out


def curves(
    rows: Iterable[Mapping[str, Any]],
    *,
    metric: str = metrics.EPISODE_RETURN_MEAN,
    x: str = metrics.ENV_STEPS,
    window: int | None = None,
    secondary: str | None = None,
) -> list[TrialCurve]:
    """Group rows by `trial_id` and keep those where both `x` and `metric` are numbers.

    Args:
        rows: Flattened result rows; rows without `trial_id` form one trial named "run".
        metric: The y value (a flattened metric name or any numeric key of the rows).
        x: The x value, env steps by default.
        window: Points in the smoothing mean; default a twentieth of the longest trial (>= 3).
        secondary: Another metric to keep beside each point (drawn on a right-hand axis).

    Returns:
        One curve per trial that has at least one point, in order of first appearance.
    """
    points: dict[str, list[tuple[float, float, float | None]]] = {}
    for row in rows:
        x_value, y_value = _number(row.get(x)), _number(row.get(metric))
        trial = points.setdefault(str(row.get("trial_id") or "run"), [])
        if x_value is not None and y_value is not None:
            extra = _number(row.get(secondary)) if secondary else None
            trial.append((x_value, y_value, extra))
    longest = max((len(p) for p in points.values()), default=0)
    window = window or max(3, longest // 20)
    found = []
    for trial_id, trial_points in points.items():
        if not trial_points:
            continue
        ys = [p[1] for p in trial_points]
        found.append(
            TrialCurve(
                trial_id=trial_id,
                x=[p[0] for p in trial_points],
                y=ys,
                smoothed=smooth(ys, window),
                window=window,
                secondary=[p[2] for p in trial_points] if secondary else None,
            )
        )
    return found


def learning_curve(
    rows: Iterable[Mapping[str, Any]],
    out: str | Path | IO[bytes],
    *,
    metric: str = metrics.EPISODE_RETURN_MEAN,
    x: str = metrics.ENV_STEPS,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    window: int | None = None,
    secondary: str | None = None,
) -> list[TrialCurve]:
    """Draw every trial's `metric` against `x` (raw and smoothed) and save a PNG to `out`.

    Args:
        rows: Flattened Tune result rows of one or more trials.
        out: A file path or a binary file object the PNG is written to.
        metric: What to draw on the y axis; the mean episode return by default.
        x: What to draw on the x axis; env steps by default.
        title: The figure title; default "<metric> against <x>".
        xlabel: The x axis label; default a short name of `x`.
        ylabel: The y axis label; default a short name of `metric`.
        window: Points in the smoothing mean (see `curves`).
        secondary: Another metric drawn dotted on a right-hand axis (e.g. epsilon or a loss).

    Returns:
        The curves drawn, one per trial.

    Raises:
        ValueError: no row has both `x` and `metric` as numbers.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    found = curves(rows, metric=metric, x=x, window=window, secondary=secondary)
    if not found:
        raise ValueError(f"no result row has numbers for both {metric!r} and {x!r}")
    figure = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    right = axes.twinx() if secondary else None
    palette = _palette()
    for index, curve in enumerate(found):
        color = palette[index % len(palette)]
        axes.plot(curve.x, curve.y, color=color, linewidth=0.8, alpha=0.35)
        axes.plot(curve.x, curve.smoothed, color=color, linewidth=2.0, label=curve.trial_id)
        if right is not None and curve.secondary is not None:
            values = [math.nan if v is None else v for v in curve.secondary]
            right.plot(curve.x, values, color=color, linestyle=":", linewidth=1.2)
    axes.set_xlabel(xlabel or LABELS.get(x, x))
    axes.set_ylabel(ylabel or LABELS.get(metric, metric))
    if right is not None and secondary is not None:
        right.set_ylabel(f"{LABELS.get(secondary, secondary)} (dotted)")
    axes.set_title(title or f"{LABELS.get(metric, metric)} against {LABELS.get(x, x)}")
    axes.grid(alpha=0.3)
    title_text = f"trial (thick: mean of {found[0].window}, thin: raw)"
    legend = axes.legend(loc="best", fontsize="small", title=title_text)
    legend.get_title().set_fontsize("small")
    figure.tight_layout()
    figure.savefig(out, format="png")
    return found


def _palette() -> list[Any]:
    from matplotlib import colormaps

    return [colormaps["tab10"](i) for i in range(10)]


def job_title(job_id: str, spec: Mapping[str, Any]) -> str:
    """The title the CLI and the API both give a job's curve."""
    return f"{spec.get('algorithm', '?')} on {spec.get('env', '?')} (job {job_id})"
