"""Diagrams for the recurrent-networks page, drawn with matplotlib.

`draw_unrolled_rnn(ax, steps)` draws a vanilla RNN folded (one cell with a loop)
and unrolled in time (the same cell at every step, the hidden state passed
along); `draw_lstm_cell(ax)` draws one LSTM cell with its gates. Both draw on
the axes they are given and return the number of cell boxes drawn.
"""
from __future__ import annotations

from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

CELL = "#dbe9f6"      # the cell (same colour wherever the same weights act)
GATE = "#fde2c4"      # a gate's non-linearity
OP = "#ffffff"        # an element-wise operation
EDGE = "#333333"


def _box(ax, x, y, w, h, text, face=CELL, size=10):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=face, edgecolor=EDGE, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=size)


def _op(ax, x, y, text, r=0.17):
    ax.add_patch(Circle((x, y), r, facecolor=OP, edgecolor=EDGE, lw=1.2))
    ax.text(x, y, text, ha="center", va="center", fontsize=10)


def _arrow(ax, start, end, color=EDGE, lw=1.3, style="-|>", **kw):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style,
                                 mutation_scale=11, color=color, lw=lw,
                                 shrinkA=0, shrinkB=0, **kw))


def _line(ax, xs, ys, color=EDGE, lw=1.3):
    ax.plot(xs, ys, color=color, lw=lw, solid_capstyle="round")


def draw_unrolled_rnn(ax, steps=4):
    """A folded RNN cell, '=', and the same cell unrolled over `steps`."""
    cells = 0
    # folded: one cell whose output loops back into itself
    _box(ax, 0.8, 1.5, 1.0, 0.7, "cell")
    cells += 1
    _arrow(ax, (0.8, 0.35), (0.8, 1.15))
    ax.text(0.8, 0.15, "$x_t$", ha="center", va="center", fontsize=11)
    _arrow(ax, (0.8, 1.85), (0.8, 2.65))
    ax.text(0.8, 2.85, "$h_t$", ha="center", va="center", fontsize=11)
    _line(ax, [0.8, 1.75, 1.75], [2.3, 2.3, 1.5])        # the loop back
    _arrow(ax, (1.75, 1.5), (1.3, 1.5))
    ax.text(1.85, 1.9, "$h_{t-1}$", ha="left", va="center", fontsize=10)
    ax.text(2.6, 1.5, "=", ha="center", va="center", fontsize=20)

    # unrolled: the same cell at steps 1..steps, hidden state passed along
    x0, dx = 4.5, 1.9
    ax.text(3.25, 1.5, "$h_0$", ha="center", va="center", fontsize=11)
    _arrow(ax, (3.5, 1.5), (x0 - 0.5, 1.5))
    for t in range(1, steps + 1):
        cx = x0 + (t - 1) * dx
        _box(ax, cx, 1.5, 1.0, 0.7, "cell")
        cells += 1
        _arrow(ax, (cx, 0.35), (cx, 1.15))
        ax.text(cx, 0.15, f"$x_{t}$", ha="center", va="center", fontsize=11)
        _arrow(ax, (cx, 1.85), (cx, 2.65))
        ax.text(cx, 2.85, f"$h_{t}$", ha="center", va="center", fontsize=11)
        if t < steps:
            _arrow(ax, (cx + 0.5, 1.5), (cx + dx - 0.5, 1.5))
            ax.text(cx + dx / 2, 1.65, f"$h_{t}$", ha="center", va="bottom",
                    fontsize=9)
    end = x0 + (steps - 1) * dx
    _arrow(ax, (end + 0.5, 1.5), (end + 1.1, 1.5), style="-")
    ax.text(end + 1.25, 1.5, "...", ha="left", va="center", fontsize=12)
    ax.text((x0 + end) / 2, -0.35,
            "the same weights $W_{ih}, W_{hh}, b$ in every cell",
            ha="center", va="center", fontsize=10, style="italic")
    ax.set_xlim(0, end + 1.8)
    ax.set_ylim(-0.6, 3.1)
    ax.set_aspect("equal")
    ax.axis("off")
    return cells


def draw_lstm_cell(ax):
    """One LSTM step: gates i, f, g, o from [h_{t-1}, x_t]; the cell path."""
    top, bottom = 3.0, 0.6          # the cell line and the hidden line
    gx = {"f": 1.6, "i": 2.7, "g": 3.8, "o": 4.9}
    gy = 1.5
    # frame of the cell
    ax.add_patch(FancyBboxPatch((0.7, 0.2), 6.2, 3.3,
                                boxstyle="round,pad=0.02,rounding_size=0.2",
                                facecolor="#f4f8fc", edgecolor="#888888",
                                lw=1.0, ls="--"))
    # the cell path along the top: c_{t-1} -> x f -> + -> c_t
    _line(ax, [0.0, 1.43], [top, top], lw=2.2)
    _op(ax, gx["f"], top, "×")
    _line(ax, [1.77, 3.63], [top, top], lw=2.2)
    _op(ax, gx["g"], top, "+")
    _arrow(ax, (3.97, top), (7.6, top), lw=2.2)
    ax.text(-0.05, top + 0.22, "$c_{t-1}$", ha="left", fontsize=11)
    ax.text(7.6, top + 0.22, "$c_t$", ha="right", fontsize=11)
    # inputs: h_{t-1} enters along the bottom, x_t from below
    _line(ax, [0.0, gx["o"]], [bottom, bottom])
    ax.text(-0.05, bottom + 0.12, "$h_{t-1}$", ha="left", fontsize=11)
    ax.plot([1.1], [bottom], "o", color=EDGE, ms=4)      # joined: [h, x]
    _line(ax, [1.1, 1.1], [-0.4, bottom])
    ax.text(1.1, -0.6, "$x_t$", ha="center", fontsize=11)
    # the four gates, each reading [h_{t-1}, x_t]
    for name, act in [("f", "σ"), ("i", "σ"), ("g", "tanh"), ("o", "σ")]:
        _arrow(ax, (gx[name], bottom), (gx[name], gy - 0.28))
        _box(ax, gx[name], gy, 0.75, 0.55, act, face=GATE, size=9)
        ax.text(gx[name] + 0.42, gy - 0.3, f"${name}_t$", fontsize=10)
    # f multiplies the old cell; i * g is added to it
    _arrow(ax, (gx["f"], gy + 0.28), (gx["f"], top - 0.17))
    _op(ax, gx["i"] + 0.55, 2.3, "×")
    _line(ax, [gx["i"], gx["i"]], [gy + 0.28, 2.3])
    _arrow(ax, (gx["i"], 2.3), (gx["i"] + 0.38, 2.3))
    _line(ax, [gx["g"], gx["g"]], [gy + 0.28, 2.3])
    _arrow(ax, (gx["g"], 2.3), (gx["i"] + 0.72, 2.3))
    _arrow(ax, (gx["i"] + 0.55, 2.47), (gx["g"] - 0.12, top - 0.12))
    # output: h_t = o * tanh(c_t)
    _line(ax, [6.0, 6.0], [top, 2.55])
    _box(ax, 6.0, 2.25, 0.75, 0.45, "tanh", face=GATE, size=9)
    _arrow(ax, (6.0, 2.02), (6.0, 1.67))
    _op(ax, 6.0, 1.5, "×")
    _arrow(ax, (gx["o"] + 0.38, gy), (5.83, 1.5))
    _line(ax, [6.0, 6.0], [1.33, bottom])
    _arrow(ax, (6.0, bottom), (7.6, bottom))
    ax.text(7.6, bottom + 0.12, "$h_t$", ha="right", fontsize=11)
    ax.text(4.6, -0.6, "σ: sigmoid, values in (0, 1);  ×, +: element-wise",
            ha="center", fontsize=9, style="italic")
    ax.set_xlim(-0.2, 7.8)
    ax.set_ylim(-0.8, 3.7)
    ax.set_aspect("equal")
    ax.axis("off")
    return 1
