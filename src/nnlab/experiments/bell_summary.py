"""Summaries of the Bell experiment's results for its chapter: the B6-against-scramble gaps with
confidence intervals, sample-size slopes, and the effective dimension of a polynomial. Kept apart
from :mod:`nnlab.experiments.bell` so that the way results are summarised can change without
invalidating the cached runs."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nnlab.experiments.bell import exact_sobol, interval

def effective_dimension(terms) -> float:
    """How many variables share the first-order variance: 1 / sum_j (S_j / sum_k S_k)^2, from 1
    (one variable explains it all) to 6 (all equally)."""
    first = exact_sobol(terms)[0]
    share = first / first.sum()
    return float(1 / np.sum(share ** 2))


def gap_summary(gaps: pd.DataFrame) -> pd.DataFrame:
    """Per scramble: geometric mean over seeds of the ratio (scramble over B6, relative test MSE)
    with its 95 % t-interval, and how many seeds have a ratio above 1."""
    rows = []
    for name, g in gaps.groupby("polynomial", sort=False):
        mean, half = interval(np.log(g.ratio.to_numpy()))
        rows.append({"polynomial": name, "kind": g.kind.iloc[0], "seeds": len(g),
                     "ratio": float(np.exp(mean)), "low": float(np.exp(mean - half)),
                     "high": float(np.exp(mean + half)), "above_one": int((g.ratio > 1).sum()),
                     "train_ratio": float(np.exp(np.log(g.train_ratio).mean()))})
    return pd.DataFrame(rows)


def scramble_effect(gaps: pd.DataFrame) -> dict:
    """The B6-against-scramble gap over the random scrambles (the Sobol-matched control excluded):
    geometric mean of the per-scramble ratios with a 95 % t-interval over scrambles (each scramble
    one independent draw), and the same seed by seed."""
    random = gaps[gaps.kind == "main"]
    per_scramble = np.log(random.groupby("polynomial").ratio.apply(lambda r: np.exp(np.log(r).mean())))
    mean, half = interval(per_scramble.to_numpy())
    per_seed = np.exp(np.log(random.ratio).groupby(random.seed).mean())
    return {"ratio": float(np.exp(mean)), "low": float(np.exp(mean - half)),
            "high": float(np.exp(mean + half)), "scrambles": len(per_scramble),
            "above_one": int((per_scramble > 0).sum()), "per_seed": per_seed.to_dict()}


def slope_summary(slopes: pd.DataFrame) -> pd.DataFrame:
    """Per architecture and polynomial (and "scrambles": all scrambles pooled): mean slope over
    seeds with a 95 % t-interval; and the deep-minus-shallow slope difference paired by polynomial
    and seed."""
    rows = []
    groups = [(a, p, g) for (a, p), g in slopes.groupby(["architecture", "polynomial"])]
    groups += [(a, "scrambles", g[g.polynomial != "B6"]) for a, g in slopes.groupby("architecture")]
    for a, p, g in groups:
        mean, half = interval(g.slope.to_numpy())
        rows.append({"architecture": a, "polynomial": p, "runs": len(g), "slope": float(mean),
                     "ci": float(half)})
    return pd.DataFrame(rows)


def slope_difference(slopes: pd.DataFrame, polynomials_: list[str]) -> dict:
    """Residual-net slope minus one-hidden-layer slope, paired by polynomial and seed (negative:
    the deep net's error falls faster with n), mean with a 95 % t-interval."""
    wide = slopes[slopes.polynomial.isin(polynomials_)].pivot_table(
        index=["polynomial", "seed"], columns="architecture", values="slope")
    mean, half = interval((wide["resnet"] - wide["shallow"]).to_numpy())
    return {"difference": float(mean), "ci": float(half), "pairs": len(wide)}


def size_errors(rows: pd.DataFrame) -> pd.DataFrame:
    """Geometric mean over seeds of the relative test MSE, per (architecture, polynomial) and size."""
    log = np.log(rows.final_test_mse_rel)
    return np.exp(log.groupby([rows.architecture, rows.polynomial, rows.n_train]).mean()).unstack()
