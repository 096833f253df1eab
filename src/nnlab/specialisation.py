"""How a student network's hidden units line up with a teacher's.

A ReLU network computes the same function after permuting the units of a hidden layer or multiplying
a unit's incoming weights and bias by c > 0 and its outgoing weights by 1/c. :func:`canonical` removes
the rescaling freedom, :func:`match_units` the permutation (Hungarian matching of incoming-weight
directions), and :func:`match_two_layers` carries the first layer's permutation into the second layer.
Layers are lists of float numpy pairs ``(W (out, in), b (out,))``.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def canonical(layers):
    """Fix the positive-rescaling symmetry of a ReLU network without changing its function.

    Each hidden unit's incoming (w, b) is scaled to the norm sqrt(fan_in + 1) that an N(0, 1)
    vector of that length has on average, and the inverse factor is moved into the next layer's
    weights; the output layer absorbs the product of all factors.
    """
    out, carry = [], None
    for l, (W, b) in enumerate(layers):
        W = W * carry[None, :] if carry is not None else W
        if l < len(layers) - 1:
            norm = np.sqrt((W ** 2).sum(1) + b ** 2)
            scale = np.where(norm > 0, np.sqrt(W.shape[1] + 1) / np.where(norm > 0, norm, 1), 1.0)
            W, b, carry = W * scale[:, None], b * scale, 1 / scale
        out.append((W, b))
    return out


def cosines(student_W, teacher_W) -> np.ndarray:
    """(teacher units, student units) cosine similarities of the rows (incoming weight vectors)."""
    def unit(V):
        V = np.asarray(V, dtype=float)
        return V / np.maximum(np.linalg.norm(V, axis=1, keepdims=True), 1e-300)
    return unit(teacher_W) @ unit(student_W).T


def match_units(student_W, teacher_W) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching of teacher units to distinct student units by incoming-weight cosine.

    Returns, per teacher unit, the matched student unit (-1 if the student has fewer units) and the
    cosine similarity of their incoming weight vectors (NaN if unmatched): the overlap of that
    teacher unit. The cosine is blind to positive rescaling, the assignment to permutations.
    """
    cos = cosines(student_W, teacher_W)
    rows, cols = linear_sum_assignment(cos, maximize=True)
    match, best = np.full(len(cos), -1), np.full(len(cos), np.nan)
    match[rows], best[rows] = cols, cos[rows, cols]
    return match, best


def match_two_layers(student, teacher) -> tuple[np.ndarray, np.ndarray]:
    """Overlaps of the first and the second hidden layer, the second after aligning the first.

    Both networks are put in canonical form; the first layer is matched as in :func:`match_units`;
    the student's second-layer weights are then restricted to the columns of the matched first-layer
    units, ordered as the teacher's units, and matched to the teacher's second layer the same way.
    The student's unmatched first-layer units (if it has more than the teacher) are left out of the
    second-layer cosines. Needs a student with at least as many first-layer units as the teacher.
    """
    student, teacher = canonical(student), canonical(teacher)
    match1, cos1 = match_units(student[0][0], teacher[0][0])
    if np.any(match1 < 0):
        raise ValueError(f"the student's first layer has {len(student[0][0])} units, fewer than the "
                         f"teacher's {len(teacher[0][0])}: no second-layer alignment")
    _, cos2 = match_units(student[1][0][:, match1], teacher[1][0])
    return cos1, cos2


def recovery_step(overlaps, steps, threshold: float) -> np.ndarray:
    """Per teacher unit, the first of ``steps`` from which its overlap stays above ``threshold``.

    ``overlaps``: (len(steps), units) along a run; NaN for a unit that is not above the threshold at
    the last step.
    """
    above = np.asarray(overlaps) > threshold                      # (snapshots, units)
    stays = np.flip(np.logical_and.accumulate(np.flip(above, 0), 0), 0)   # above from here to the end
    first = np.argmax(stays, 0)
    return np.where(stays[-1], np.asarray(steps, dtype=float)[first], np.nan)
