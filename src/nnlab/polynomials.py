"""Polynomials in six variables as terms (coefficient, exponents): the Bell polynomial B6 and its scramble.

One description serves every use: evaluation (numpy or torch), derivatives, exact moments and Sobol
indices under U[0, 2]^6, sympy expressions and LaTeX. A scramble replaces, in monomial i, each
variable x_k by x_{sigma_i(k)} (seed 000 §B), with permutations drawn under the seed's constraints:
ten drawn independently (SCRAMBLES) and one chosen to match B6's first-order Sobol indices
(SOBOL_MATCHED).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch

N_VARS = 6
LOW, HIGH = 0.0, 2.0                     # inputs are uniform on [LOW, HIGH]^6

# B6 = sum_k B_{6,k}, term by term in the seed's order (its 5th term corrected to 15 x2^3).
B6_TERMS = (
    (1, (6, 0, 0, 0, 0, 0)),
    (15, (4, 1, 0, 0, 0, 0)),
    (20, (3, 0, 1, 0, 0, 0)),
    (45, (2, 2, 0, 0, 0, 0)),
    (15, (0, 3, 0, 0, 0, 0)),
    (60, (1, 1, 1, 0, 0, 0)),
    (15, (2, 0, 0, 1, 0, 0)),
    (10, (0, 0, 2, 0, 0, 0)),
    (15, (0, 1, 0, 1, 0, 0)),
    (6, (1, 0, 0, 0, 1, 0)),
    (1, (0, 0, 0, 0, 0, 1)),
)



def scramble(terms, sigmas):
    """Replace x_k by x_{sigma_i(k)} in monomial i; coefficients and exponent patterns are kept."""
    out = []
    for (coef, exps), sigma in zip(terms, sigmas, strict=True):
        new = [0] * N_VARS
        for k, e in enumerate(exps):
            new[sigma[k]] = e
        out.append((coef, tuple(new)))
    return tuple(out)


def scramble_violations(terms, sigmas) -> list[str]:
    """The seed's constraints on a scramble that fail (empty list: a valid scramble).

    All six variables used; the sigma_i pairwise different; no two monomials equal (exponent
    vectors are monomials up to commutativity); and, our reading of the seed's "replace each x with
    a different x": every variable of monomial i is replaced by another one AND monomial i itself
    changes up to commutativity (swapping x2 and x4 in 15 x2 x4 moves both variables but gives the
    same monomial, so it is refused).
    """
    scrambled = scramble(terms, sigmas)
    problems = []
    if any(sorted(s) != list(range(N_VARS)) for s in sigmas):
        problems.append("some sigma_i is not a permutation of the six variable indices")
    unused = [k + 1 for k in range(N_VARS) if not any(e[k] for _, e in scrambled)]
    if unused:
        problems.append(f"variables {unused} do not appear")
    if len(set(map(tuple, sigmas))) < len(sigmas):
        problems.append("two monomials share the same permutation sigma_i")
    if len({e for _, e in scrambled}) < len(scrambled):
        problems.append("two monomials are equal up to commutativity")
    if any(e and s[k] == k for (_, exps), s in zip(terms, sigmas) for k, e in enumerate(exps)):
        problems.append("some monomial keeps one of its variables in place")
    same = [i + 1 for i, ((_, e), (_, f)) in enumerate(zip(terms, scrambled)) if e == f]
    if same:
        problems.append(f"monomials {same} are unchanged up to commutativity")
    return problems


def draw_sigmas(seed: int, terms=None) -> tuple:
    """The first draw of independent uniform permutations (one per monomial) that passes every
    constraint of :func:`scramble_violations`."""
    terms = B6_TERMS if terms is None else terms
    rng = np.random.default_rng(seed)
    while True:
        sigmas = tuple(tuple(int(v) for v in rng.permutation(N_VARS)) for _ in terms)
        if not scramble_violations(terms, sigmas):
            return sigmas


# Ten scrambles drawn independently (draw seeds 0..9); SCRAMBLES[0] is the one the single-scramble
# figures show.
SCRAMBLE_SIGMAS = tuple(draw_sigmas(seed) for seed in range(10))
SCRAMBLES = tuple(scramble(B6_TERMS, sigmas) for sigmas in SCRAMBLE_SIGMAS)


def evaluate_terms(terms, x):
    """The polynomial at the rows of ``x`` (n, 6), numpy or torch (same type out, shape (n,))."""
    total = x[:, 0] * 0
    for coef, exps in terms:
        monomial = coef
        for k, e in enumerate(exps):
            if e:
                monomial = monomial * x[:, k] ** e
        total = total + monomial
    return total


def b6(x):
    """B6(x) for x of shape (n, 6), numpy or torch."""
    return evaluate_terms(B6_TERMS, x)


def derivative(terms, j: int):
    """The terms of the partial derivative with respect to x_{j+1} (0-based j)."""
    out = []
    for coef, exps in terms:
        if exps[j]:
            out.append((coef * exps[j], tuple(e - (k == j) for k, e in enumerate(exps))))
    return tuple(out)


def gradient(terms, x):
    """Analytic gradient (n, 6) at the rows of ``x``, numpy or torch."""
    columns = [evaluate_terms(derivative(terms, j), x) for j in range(N_VARS)]
    return torch.stack(columns, 1) if isinstance(x, torch.Tensor) else np.stack(columns, 1)


def to_sympy(terms, symbols):
    """The polynomial as a sympy expression in ``symbols`` (x1..x6)."""
    import sympy
    return sympy.Add(*(coef * sympy.Mul(*(s ** e for s, e in zip(symbols, exps)))
                       for coef, exps in terms))


def latex_monomial(coef, exps) -> str:
    """``15 x_{1}^{4} x_{2}``-style LaTeX of one term (variables in increasing index)."""
    factors = "".join(f"x_{{{k + 1}}}" + (f"^{{{e}}}" if e > 1 else "")
                      for k, e in enumerate(exps) if e)
    return (str(coef) if coef != 1 else "") + (factors or "1")


# ------------------------------------------------ moments under U[0, 2]^6 and sensitivity indices

def moment(e):
    """E[x^e] for x ~ U[0, 2]."""
    return (HIGH ** (e + 1) - LOW ** (e + 1)) / ((e + 1) * (HIGH - LOW))


def exact_mean(terms) -> float:
    """E[f(x)] for x ~ U[0, 2]^6, exactly (products of one-dimensional moments)."""
    return float(sum(c * math.prod(moment(e) for e in exps) for c, exps in terms))


def exact_variance(terms) -> float:
    """Var f(x) for x ~ U[0, 2]^6, exactly: E[f^2] - E[f]^2 term by term."""
    second = sum(c * d * math.prod(moment(a + b) for a, b in zip(e, g))
                 for (c, e), (d, g) in itertools.product(terms, terms))
    return float(second - exact_mean(terms) ** 2)


def _integrate_out(terms, keep) -> tuple:
    """Terms of E[f | x_keep]: every variable not in ``keep`` replaced by its moment."""
    merged: dict[tuple, float] = {}
    for c, exps in terms:
        factor = math.prod(moment(e) for k, e in enumerate(exps) if k not in keep)
        key = tuple(e if k in keep else 0 for k, e in enumerate(exps))
        merged[key] = merged.get(key, 0.0) + c * factor
    return tuple((c, e) for e, c in merged.items())


def exact_sobol(terms) -> tuple[np.ndarray, np.ndarray]:
    """Exact first-order S_j = Var E[f|x_j] / Var f and total T_j = 1 - Var E[f|x_~j] / Var f."""
    var = exact_variance(terms)
    first = [exact_variance(_integrate_out(terms, {j})) / var for j in range(N_VARS)]
    total = [1 - exact_variance(_integrate_out(terms, set(range(N_VARS)) - {j})) / var
             for j in range(N_VARS)]
    return np.array(first), np.array(total)


def sobol_matched_sigmas(starts=range(10), sweeps: int = 10) -> tuple:
    """A valid scramble whose exact first-order indices rank the variables as B6's do and are close
    in size. From each start ``draw_sigmas(seed)``: coordinate descent over the monomials, trying every
    placement of monomial i's variables (the rest of sigma_i completed in the first order that keeps
    the scramble valid) and keeping the best by (ranking inversions, sum_j (log10 S_j - log10 S_j(B6))^2);
    the best result over the starts."""
    target = np.log10(exact_sobol(B6_TERMS)[0])
    order = np.argsort(-target)

    def cost(sigmas):
        s = exact_sobol(scramble(B6_TERMS, sigmas))[0][order]
        inversions = int(np.sum(s[:-1] <= s[1:]))
        return inversions, float(np.sum((np.log10(np.maximum(s, 1e-300)) - target[order]) ** 2))

    def placements(current, i):
        support = [k for k in range(N_VARS) if B6_TERMS[i][1][k]]
        free = [k for k in range(N_VARS) if k not in support]
        for image in itertools.permutations(range(N_VARS), len(support)):
            rest = [v for v in range(N_VARS) if v not in image]
            for completion in itertools.permutations(rest):
                sigma = [0] * N_VARS
                for k, v in zip(support + free, image + completion):
                    sigma[k] = v
                candidate = current[:i] + [tuple(sigma)] + current[i + 1:]
                if not scramble_violations(B6_TERMS, candidate):
                    yield candidate
                    break

    results = []
    for seed in starts:
        current = list(draw_sigmas(seed))
        best = cost(current)
        for _ in range(sweeps):
            improved = False
            for i in range(len(B6_TERMS)):
                for candidate in placements(current, i):
                    c = cost(candidate)
                    if c < best:
                        current, best, improved = candidate, c, True
            if not improved:
                break
        results.append((best, tuple(current)))
    return min(results)[1]


def sobol_indices(f, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo first-order and total indices of f on U[0, 2]^6 (n(d+2) evaluations).

    Saltelli et al. (2010): S_j = mean(f(B) (f(A_B^j) - f(A))) / V and Jansen's
    T_j = mean((f(A) - f(A_B^j))^2) / 2V, where A_B^j is A with column j taken from B.
    f(B) is centred by the sample mean first (Sobol 2001's f0), which halves the estimator's
    spread here. ``f`` maps (n, 6) float64 to (..., n); the indices have shape (..., 6).
    """
    rng = np.random.default_rng(seed)
    A, B = rng.uniform(LOW, HIGH, (2, n, N_VARS))
    fA, fB = np.asarray(f(A), float), np.asarray(f(B), float)
    both = np.concatenate([fA, fB], -1)
    var = np.var(both, -1)
    fB = fB - both.mean(-1, keepdims=True)
    first, total = [], []
    for j in range(N_VARS):
        ABj = A.copy()
        ABj[:, j] = B[:, j]
        fABj = np.asarray(f(ABj), float)
        first.append(np.mean(fB * (fABj - fA), -1) / var)
        total.append(0.5 * np.mean((fA - fABj) ** 2, -1) / var)
    return np.stack(first, -1), np.stack(total, -1)


# The Sobol-matched control: sobol_matched_sigmas() (about half a minute of search, so fixed here).
SOBOL_MATCHED_SIGMAS = (
    (1, 0, 2, 3, 5, 4), (1, 0, 2, 3, 4, 5), (1, 2, 0, 3, 5, 4), (2, 0, 1, 3, 4, 5), (4, 0, 1, 3, 5, 2),
    (1, 0, 3, 5, 4, 2), (1, 2, 3, 0, 4, 5), (1, 2, 0, 3, 4, 5), (3, 0, 5, 4, 2, 1), (5, 1, 2, 4, 0, 3),
    (3, 4, 1, 2, 5, 0),
)
SOBOL_MATCHED = scramble(B6_TERMS, SOBOL_MATCHED_SIGMAS)
