"""nnlab: the experiments and derivations behind the book *What neural networks can learn*.

Chapters call ``nnlab.load(name)``; everything else lives in the submodules.
"""


def load(name: str, profile: str | None = None, **overrides):
    """The cached result of experiment ``name`` (see :func:`nnlab.cache.load`)."""
    from nnlab.cache import load as load_result

    return load_result(name, profile, **overrides)
