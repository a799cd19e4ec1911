"""The convex programs behind exact empirical risk minimisation (private to :mod:`dcnn_helpers.depth`).

Introduced in notebook 02 (depth separation). Arora et al.'s Algorithm 1 guesses, for every unit, the sign of its
output weight and the split of the data it is active on; each guess is a least squares problem over a product of
polyhedral cones, solved as a non-negative least squares problem in the cones' extreme rays. Here: the hyperplanes
through the data points, the splits they realise, the (sign, split) pairs with their columns, and the search for the
best set of pairs.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy.optimize import nnls


def hyperplane_geometry(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The hyperplanes through every ``n`` of the points ``x_j`` and the signs of all points relative to them.

    With ``g_j = (x_j, 1)``, returns ``(norms, subsets, normals, values)``: ``norms[j] = |g_j|``, ``subsets``
    (C, n) indexes the points each hyperplane passes through, ``normals`` (C, n+1) are unit normals ``v_c`` and
    ``values[j, c] = <g_j, v_c> / |g_j|``, set to exactly 0 on the points the hyperplane passes through. Raises if
    the points are not in general position (``n + 1`` of them on one hyperplane).
    """
    D, n = X.shape
    if D < n + 1:
        raise ValueError(f"X has D={D} points in R^{n}; the exact algorithm needs at least n + 1 = {n + 1}")
    G = np.hstack([X, np.ones((D, 1))])
    norms = np.linalg.norm(G, axis=1)
    G = G / norms[:, None]
    full = np.array(list(itertools.combinations(range(D), n + 1)))
    dets = np.abs(np.linalg.det(G[full]))
    if dets.min() < 1e-9:
        bad = full[int(np.argmin(dets))].tolist()
        raise ValueError(
            f"X must be in general position (no {n + 1} points on one hyperplane; for n = 1: distinct values); "
            f"points {bad} are (nearly) degenerate"
        )
    subsets = np.array(list(itertools.combinations(range(D), n)))
    normals = np.linalg.svd(G[subsets])[2][:, -1, :]  # null vector of each n x (n+1) block
    values = G @ normals.T
    values[subsets, np.arange(len(subsets))[:, None]] = 0.0
    return norms, subsets, normals, values


def splits_from_geometry(subsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    D, C = values.shape
    n = subsets.shape[1]
    found = [np.zeros((1, D), bool), np.ones((1, D), bool)]
    cols = np.arange(C)[:, None]
    for orientation in (1.0, -1.0):
        base = (orientation * values > 0).T  # (C, D)
        for assignment in itertools.product((False, True), repeat=n):
            rows = base.copy()
            rows[cols, subsets] = np.array(assignment)
            found.append(rows)
    return np.unique(np.concatenate(found), axis=0)


def standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(values - centre) / scale`` per column, with the centre and scale (1 where a column is constant)."""
    centre = values.mean(axis=0)
    scale = values.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    return (values - centre) / scale, centre, scale


def sign_split_pairs(X: np.ndarray) -> tuple[list[tuple[float, np.ndarray, np.ndarray]], int]:
    """Every (sign, split) pair as (sign, extreme rays (r, n+1), columns (D, r)), and the number of splits.

    Columns are ``s * [j in P] * <ray, g_j>``, exactly 0 where a ray's hyperplane passes through the point (else
    rounding noise there would let a huge coefficient fake a fit); all-zero columns are dropped.
    """
    norms, subsets, normals, values = hyperplane_geometry(X)
    splits = splits_from_geometry(subsets, values)
    directions = np.concatenate([normals, -normals])  # candidate extreme rays of every split's cone
    signed_values = np.concatenate([values, -values], axis=1)
    pairs: list[tuple[float, np.ndarray, np.ndarray]] = []
    for split in splits:
        feasible = np.all(np.where(split[:, None], signed_values >= 0, signed_values <= 0), axis=0)
        columns = norms[:, None] * signed_values[:, feasible] * split[:, None]
        useful = columns.any(axis=0)
        rays, columns = directions[feasible][useful], columns[:, useful]
        pairs.append((1.0, rays, columns))
        if split.any():  # the empty split's unit is silent whatever its sign: count it once
            pairs.append((-1.0, rays, -columns))
    return pairs, len(splits)


def best_program(pairs, y: np.ndarray, units: int) -> tuple[float, tuple[int, ...], np.ndarray]:
    """The set of ``units`` (sign, split) pairs whose non-negative least squares fit is best (with a constant)."""
    const = np.stack([np.ones(len(y)), -np.ones(len(y))], axis=1)
    best = (math.inf, (), np.zeros(2))
    for combo in itertools.combinations(range(len(pairs)), units):
        A = np.concatenate([pairs[p][2] for p in combo] + [const], axis=1)
        coef, rnorm = nnls(A, y, maxiter=50 * A.shape[1])
        if rnorm < best[0]:
            best = (rnorm, combo, coef.copy())
    return best
