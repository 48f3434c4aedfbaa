"""Cost-against-quality plot of a replayed policy's operating points and its baselines (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from cascadeflow.errors import ConfigurationError
from cascadeflow.replay.report import OperatingPoint


def _pyplot():  # type: ignore[no-untyped-def]
    try:
        import matplotlib
    except ImportError:
        raise ConfigurationError('plotting needs matplotlib: pip install "cascadeflow[replay]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_operating_points(path: str | Path, title: str, sweep: Sequence[OperatingPoint],
                          baselines: Sequence[OperatingPoint], chosen: OperatingPoint | None = None,
                          chosen_label: str | None = None, *, target: float = 0.95,
                          more_sweeps: Mapping[str, Sequence[OperatingPoint]] | None = None,
                          more_points: Mapping[str, OperatingPoint] | None = None) -> Path:
    """Write a PNG: x = cost as a share of strong-only, y = quality as a share of strong-only.

    Random routing's expectation is linear in its strong share, so it is drawn as the line from cheap-only
    to strong-only."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    ordered = sorted(sweep, key=lambda p: p.cost_fraction)
    ax.plot([p.cost_fraction for p in ordered], [p.quality_fraction for p in ordered], "o-", ms=3,
            label="cascade (threshold sweep)", color="tab:blue")
    for (label, extra), color in zip((more_sweeps or {}).items(), ("tab:purple", "tab:cyan", "tab:olive"),
                                     strict=False):
        line = sorted(extra, key=lambda p: p.cost_fraction)
        ax.plot([p.cost_fraction for p in line], [p.quality_fraction for p in line], "o-", ms=2, color=color,
                label=label)
    fixed = [b for b in baselines if not b.name.startswith("random")]
    ends = {b.name: b for b in fixed}
    markers = {"cheap-only": ("s", "tab:gray"), "strong-only": ("D", "black"), "oracle": ("*", "tab:green")}
    for b in fixed:
        marker, color = markers.get(b.name, ("x", "tab:red"))
        ax.plot([b.cost_fraction], [b.quality_fraction], marker, color=color, ms=9, label=b.name)
    if "cheap-only" in ends and "strong-only" in ends:
        low, high = ends["cheap-only"], ends["strong-only"]
        ax.plot([low.cost_fraction, high.cost_fraction], [low.quality_fraction, high.quality_fraction], "--",
                color="tab:orange", label="random routing")
    if chosen is not None:
        ax.plot([chosen.cost_fraction], [chosen.quality_fraction], "o", mfc="none", mec="tab:red", ms=14,
                label=chosen_label or ("chosen" if chosen.threshold is None else f"chosen (t={chosen.threshold:.3f})"))
    for (label, extra_point), marker in zip((more_points or {}).items(), ("^", "v", "P"), strict=False):
        ax.plot([extra_point.cost_fraction], [extra_point.quality_fraction], marker, color="tab:brown", ms=9,
                label=label)
    ax.axhline(target, color="tab:red", lw=0.8, ls=":", label=f"{target:.0%} of strong-only quality")
    ax.set_xlabel("cost (share of strong-only)")
    ax.set_ylabel("quality (share of strong-only)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
