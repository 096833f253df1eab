"""Figure of the backpropagation chapter, drawn from the cached ``backprop`` result."""
from __future__ import annotations

from nnlab.plots import style


def plot_gradient_cost(timing):
    """Seconds for one forward pass, the backward-pass gradient and the forward-difference gradient
    against the input dimension n, with n + 1 forward passes for reference."""
    fig, ax = style.figure(height=3.4)
    ax.loglog(timing.n, timing.t_forward, "o-", color="gray", label="one forward pass")
    ax.loglog(timing.n, timing.t_reverse, "o-", color="tab:blue", label="gradient: forward + backward pass")
    ax.loglog(timing.n, timing.t_fd, "o-", color="tab:red", label="gradient: forward differences")
    ax.loglog(timing.n, (timing.n + 1) * timing.t_forward, ":", color="tab:red", label="(n + 1) forward passes")
    ax.set(xlabel="input dimension $n$", ylabel="seconds", ylim=(timing.t_forward.min() / 3, None))
    ax.legend(loc="upper left")
    return fig
