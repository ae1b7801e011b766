"""Seeds -> intervals -> a verdict that names only what the intervals support.

Every variant is trained with the same seeds; seed ``k`` gives every variant the same model
init, data order and held-out samples, so a difference between two variants is taken seed
by seed (paired) and its interval is that of the per-seed differences. Intervals are
95 % Student-t intervals with n - 1 degrees of freedom (:data:`INTERVAL`): with 3 seeds the
t quantile is 4.30, so the intervals are wide, and a claim survives only a clear effect.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from maskdepth.model.metrics import HIGHER_IS_BETTER, METRIC_NAMES

INTERVAL = "95% Student-t interval over seeds (n - 1 degrees of freedom)"
CONFIDENCE = 0.95
NO_DIFFERENCE = "no measurable difference at this budget"


def t_quantile(dof: int) -> float:
    """The two-sided 95 % quantile of Student's t with ``dof`` degrees of freedom (4.303 for 2)."""
    from scipy.stats import t  # scipy comes with scikit-image

    return float(t.ppf(0.5 + CONFIDENCE / 2, dof))


def interval(values: Sequence[float]) -> dict[str, float | int | None]:
    """``{"mean", "low", "high", "n"}`` of the finite ``values``; low/high are None below 2 values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(xs)
    if n == 0:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mean = sum(xs) / n
    if n < 2:
        return {"mean": mean, "low": None, "high": None, "n": n}
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def summarize(seeds: Sequence[Mapping]) -> dict[str, dict]:
    """Per metric (and training time) the interval of one variant's per-seed values."""
    keys = [*METRIC_NAMES, "time_s"]
    return {
        key: interval([s["metrics"].get(key) if key in METRIC_NAMES else s.get(key) for s in seeds])
        for key in keys
    }


def paired(a: Sequence[Mapping], b: Sequence[Mapping]) -> dict[str, dict]:
    """Per metric the interval of ``a - b`` over the seeds both lists have (matched on ``seed``)."""
    by_seed = {s["seed"]: s["metrics"] for s in b}
    pairs = [(s["metrics"], by_seed[s["seed"]]) for s in a if s["seed"] in by_seed]
    out = {}
    for key in METRIC_NAMES:
        diffs = [
            x[key] - y[key]
            for x, y in pairs
            if x.get(key) is not None and y.get(key) is not None and math.isfinite(x[key] - y[key])
        ]
        out[key] = interval(diffs)
    return out


def excludes_zero(stat: Mapping) -> bool:
    return stat.get("low") is not None and (stat["low"] > 0 or stat["high"] < 0)


def _fmt(stat: Mapping, signed: bool = True) -> str:
    sign = "+" if signed else ""
    return f"{stat['mean']:{sign}.3f} [{stat['low']:{sign}.3f}, {stat['high']:{sign}.3f}]"


def measured(diff: Mapping[str, Mapping]) -> str:
    """What ``diff`` (a - b, from :func:`paired`) supports: each metric whose interval excludes zero.

    Returns e.g. ``"better Depth δ<1.25 +0.052 [+0.031, +0.073]; worse Depth RMSE +0.004 [...]"``
    (better or worse for a, each metric's direction), :data:`NO_DIFFERENCE`, or a note that one
    seed gives no interval.
    """
    if all(stat.get("low") is None for stat in diff.values()):
        return "not measurable with one seed (run with --seeds 3 or more)"
    claims = []
    for key, stat in diff.items():
        if excludes_zero(stat):
            better = (stat["mean"] > 0) == HIGHER_IS_BETTER[key]
            claims.append(f"{'better' if better else 'worse'} {METRIC_NAMES[key]} {_fmt(stat)}")
    if not claims:
        return NO_DIFFERENCE
    return "; ".join(claims)


def verdict(
    variants: Mapping[str, Mapping],
    baseline: str | None,
    lr_pair: tuple[str, str] | None,
    about: Mapping[str, str],
    n_scored: int,
) -> str:
    """The comparison's Markdown verdict: method, each variant against the baseline, the lr question.

    Args:
        variants: name -> entry with ``description``, ``seeds`` and ``vs_baseline`` (paired intervals).
        baseline: the variant every other one is paired with (None: no comparison possible).
        lr_pair: (continue, restart) variant names, if both were trained.
        about: name -> what the variant's loss or schedule does (a description, not a prediction).
        n_scored: held-out samples scored per seed.
    """
    if not variants:
        return "no variants were trained"
    n_seeds = max(len(v.get("seeds", [])) for v in variants.values())
    lines = [
        f"Each variant trained with {n_seeds} seed(s) (same init, data order and held-out samples per seed "
        f"across variants), scored on {n_scored} held-out samples per seed. Differences are paired by seed: "
        f"mean [{INTERVAL}]; a difference is named only where its interval excludes zero (at 95 %, about "
        "one interval in 20 does so by chance when there is no difference)."
    ]
    if baseline is None or len(variants) < 2:
        lines.append(f"Only one variant: nothing to compare it with ({NO_DIFFERENCE}).")
    for name, entry in variants.items():
        text = about.get(name, "")
        head = f"- **{name}**: {entry.get('description', '')}." + (f" {text}" if text else "")
        if name == baseline:
            lines.append(f"{head} *Baseline.*")
        elif baseline is not None:
            lines.append(f"{head} *Measured against {baseline}:* {measured(entry.get('vs_baseline', {}))}.")
    if lr_pair is not None:
        cont, restart = lr_pair
        diff = paired(variants[restart]["seeds"], variants[cont]["seeds"])
        lines.append(
            f"\n**Resume: restart or continue the learning rate?** Restart against continue: {measured(diff)}."
        )
    return "\n".join(lines)
