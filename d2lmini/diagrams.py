"""Diagrams for the convolution chapters: grids of numbers and rows of feature maps.

:func:`draw_grid` draws a small matrix as numbered squares, with windows highlighted
(a kernel position, a pooling window, padding drawn in grey), so that several grids
side by side on one set of axes explain an operation: input, kernel, output.
:func:`show_maps` shows an image next to the feature maps computed from it.
:func:`layer_stacks` draws networks and blocks as columns of labelled boxes.

Import it as ``from d2lmini import diagrams``. matplotlib is imported only inside the
functions, so ``import d2lmini`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

__all__ = ["draw_grid", "grid_figure", "layer_label", "layer_stacks", "show_maps"]

Window = tuple[int, int, int, int]
"""A rectangle of cells: ``(row, col, height, width)``."""

HIGHLIGHT = "#9ecae1"  # light blue: cells of a highlighted window
OUTLINE = "#08519c"  # dark blue: the window's frame
MUTED = "#e0e0e0"  # light grey: padding and other cells that are not data


def _as_rows(values: Any) -> list[list[Any]]:
    """A rectangular 2-D array-like (tensor, ndarray, nested lists) as a list of rows."""
    if hasattr(values, "detach"):
        values = values.detach().cpu()
    if hasattr(values, "tolist"):
        values = values.tolist()
    if not isinstance(values, Sequence) or not values:
        raise ValueError("values must be a non-empty 2-D array")
    rows = [list(row) if isinstance(row, Sequence) else None for row in values]
    if any(row is None for row in rows):
        raise ValueError("values must be 2-D: a sequence of rows")
    widths = {len(row) for row in rows if row is not None}
    if len(widths) != 1 or 0 in widths:
        raise ValueError(f"rows of a grid must have one non-zero length, got {sorted(widths)}")
    return [row for row in rows if row is not None]


def _windows(highlight: Window | Sequence[Window] | None) -> list[Window]:
    if highlight is not None and len(highlight) == 4 and all(isinstance(v, int) for v in highlight):
        return [highlight]  # type: ignore[list-item]
    return list(highlight or [])  # type: ignore[arg-type]


def draw_grid(
    ax: Axes, values: Any, *, origin: tuple[float, float] = (0.0, 0.0),
    highlight: Window | Sequence[Window] | None = None, muted: Any = None,
    title: str | None = None, fmt: str = "{:g}", fontsize: float = 10.0,
) -> list[Rectangle]:  # fmt: skip
    """Draw a matrix as a grid of unit squares with its numbers on ``ax``.

    Cell ``(i, j)`` is the square from ``x = ox + j`` to ``ox + j + 1`` and from
    ``y = oy - i - 1`` to ``oy - i``: the grid's top-left corner is ``origin`` and row 0
    is at the top, as the matrix is printed. Draw several grids on one axes at different
    origins to put an input, a kernel and an output side by side.

    Args:
        ax: the matplotlib axes to draw on.
        values: a 2-D tensor, array or list of rows; each entry is written with ``fmt``.
        origin: where the top-left corner of the grid goes.
        highlight: one window ``(row, col, height, width)`` or a list of them: their
            cells are shaded and each window gets a thick frame.
        muted: a boolean mask of the same shape; ``True`` cells are grey (padding, say).
        title: text centred above the grid.
        fmt: format string for the numbers.
        fontsize: size of the numbers (the title is drawn slightly larger).

    Returns:
        The squares of the cells, row by row (``len == rows * columns``).

    Raises:
        ValueError: if ``values`` is not a rectangular 2-D array, ``muted`` has another
            shape, or a window lies outside the grid.
    """
    from matplotlib.patches import Rectangle

    rows = _as_rows(values)
    n_rows, n_cols = len(rows), len(rows[0])
    mask = _as_rows(muted) if muted is not None else [[False] * n_cols] * n_rows
    if (len(mask), len(mask[0])) != (n_rows, n_cols):
        raise ValueError(f"muted has shape {(len(mask), len(mask[0]))}, values {(n_rows, n_cols)}")
    windows = _windows(highlight)
    for r, c, h, w in windows:
        if h < 1 or w < 1 or r < 0 or c < 0 or r + h > n_rows or c + w > n_cols:
            raise ValueError(f"window {(r, c, h, w)} does not fit a {n_rows}x{n_cols} grid")
    lit = {(i, j) for r, c, h, w in windows for i in range(r, r + h) for j in range(c, c + w)}
    ox, oy = origin
    cells = []
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            face = HIGHLIGHT if (i, j) in lit else MUTED if mask[i][j] else "white"
            cell = Rectangle((ox + j, oy - i - 1), 1, 1, facecolor=face,
                             edgecolor="black", linewidth=0.8)  # fmt: skip
            ax.add_patch(cell)
            cells.append(cell)
            ax.text(ox + j + 0.5, oy - i - 0.5, fmt.format(value), ha="center",
                    va="center", fontsize=fontsize,
                    color="dimgray" if mask[i][j] else "black")  # fmt: skip
    for r, c, h, w in windows:
        ax.add_patch(Rectangle((ox + c, oy - r - h), w, h, fill=False,
                               edgecolor=OUTLINE, linewidth=2.2))  # fmt: skip
    if title:
        ax.text(ox + n_cols / 2, oy + 0.25, title, ha="center", va="bottom",
                fontsize=fontsize + 1)  # fmt: skip
    ax.set_aspect("equal")
    ax.axis("off")
    ax.autoscale_view()
    return cells


def grid_figure(figsize: tuple[float, float] = (6.0, 2.5)) -> tuple[Figure, Axes]:
    """A figure with one blank axes for :func:`draw_grid` (SVG output in notebooks)."""
    import matplotlib.pyplot as plt

    from .plotting import use_svg_display

    use_svg_display()
    fig, ax = plt.subplots(figsize=figsize)
    ax.axis("off")
    return fig, ax


def show_maps(
    maps: Sequence[Any], titles: Sequence[str] | None = None, *, scale: float = 1.6,
    suptitle: str | None = None,
) -> list[Axes]:  # fmt: skip
    """Show 2-D images or feature maps side by side, one row.

    A map with only non-negative values (an input image) is drawn in grey from black (0)
    to white. A map with negative values (the output of an edge detector) is drawn with a
    diverging colour map centred at 0: red positive, blue negative, white zero.

    Args:
        maps: 2-D tensors or arrays (a leading axis of size 1 is squeezed away).
        titles: one title per map.
        scale: width and height of each panel in inches.
        suptitle: an optional title above the row.

    Returns:
        The axes, one per map.
    """
    import matplotlib.pyplot as plt

    from .plotting import use_svg_display

    use_svg_display()
    if titles is not None and len(titles) != len(maps):
        raise ValueError(f"got {len(maps)} maps but {len(titles)} titles")
    fig, axes = plt.subplots(1, len(maps), figsize=(scale * len(maps), scale))
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    for k, (ax, m) in enumerate(zip(axes, maps)):
        if hasattr(m, "detach"):
            m = m.detach().cpu().double().numpy()
        while getattr(m, "ndim", 2) > 2 and m.shape[0] == 1:
            m = m[0]
        if m.min() < 0:
            bound = float(abs(m).max()) or 1.0
            ax.imshow(m, cmap="RdBu_r", vmin=-bound, vmax=bound)
        else:
            ax.imshow(m, cmap="gray", vmin=0)
        ax.set(xticks=[], yticks=[])
        if titles is not None:
            ax.set_title(titles[k], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    fig.tight_layout()
    return axes


#: Box colours by the first matching word of a layer's label (lower case).
LAYER_COLORS = {"conv": "#cfe2f3", "pool": "#fce5cd", "dense": "#d9ead3", "bn": "#e6d0ef",
                "norm": "#e6d0ef", "concat": "#ffffff", "+": "#ffffff"}  # fmt: skip


def layer_label(layer: Any) -> str:
    """A short label for a layer: ``"conv 3×3, 64 /2"``, ``"max pool 2×2 /2"``, ``"dense 10"``."""
    name = type(layer).__name__
    sizes = [getattr(layer, key, 1) for key in ("kernel_size", "stride")]
    k, stride = (tuple(v) if isinstance(v, (tuple, list)) else (v, v) for v in sizes)
    by = "" if max(stride) == 1 else f" /{stride[0]}" if stride[0] == stride[1] else f" /{stride}"
    if name in ("Conv2d", "LazyConv2d"):
        return f"conv {k[0]}×{k[1]}, {layer.out_channels}{by}"
    if name in ("MaxPool2d", "AvgPool2d"):
        return f"{name[:3].lower()} pool {k[0]}×{k[1]}{by}"
    if name in ("Linear", "LazyLinear"):
        return f"dense {layer.out_features}"
    if name == "Dropout":
        return f"dropout {layer.p:g}"
    if hasattr(layer, "out_channels"):  # a block: Inception, DenseBlock
        return f"{name}, {layer.out_channels}"
    if name == "AdaptiveAvgPool2d" and layer.output_size not in (1, (1, 1)):
        return f"avg pool to {layer.output_size}"
    named = {"AdaptiveAvgPool2d": "global avg pool", "Flatten": "flatten"}
    return "batch norm" if "BatchNorm" in name else named.get(name, name)


def _labels(layers: Any) -> list[str]:
    """Labels of an ``nn.Sequential``'s layers (or of a list of modules and strings); an
    activation joins the box before it: ``"conv 5×5, 6 + Sigmoid"``."""
    if hasattr(layers, "children") and type(layers).__name__ != "Sequential":
        raise TypeError(f"a column is an nn.Sequential or a list, not {type(layers).__name__}")
    labels: list[str] = []
    for layer in layers:
        if type(layer).__name__ in ("ReLU", "Sigmoid", "Tanh") and labels:
            labels[-1] += f" + {type(layer).__name__}"
        else:
            labels.append(layer if isinstance(layer, str) else layer_label(layer))
    return labels


def layer_stacks(
    stacks: dict[str, Any], skips: Sequence[tuple[int, int, int, str]] = (),
    title: str | None = None,
) -> Figure:  # fmt: skip
    """Networks or blocks as columns of labelled boxes, input at the top.

    ``stacks`` maps a column title to an ``nn.Sequential`` (a box per layer, labelled by
    :func:`layer_label`; a nested container is one box) or to a list of labels and
    modules. Consecutive boxes are joined
    by arrows, and each box is coloured by its kind (:data:`LAYER_COLORS`). A skip
    ``(column, from_box, to_box, label)`` is an arrow on the column's right, from the
    bottom of one box around to another (a shortcut, a concatenation).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from .plotting import use_svg_display

    use_svg_display()
    stacks = {name: _labels(layers) for name, layers in stacks.items()}
    depth = max(len(layers) for layers in stacks.values())
    fig, ax = plt.subplots(figsize=(2.7 * len(stacks), 0.4 * depth + 0.8))
    for col, (name, layers) in enumerate(stacks.items()):
        x = 3.6 * col
        ax.text(x + 1.2, 0.6, name, ha="center", fontsize=9, weight="bold")
        for row, label in enumerate(layers):
            color = next((c for k, c in LAYER_COLORS.items() if k in label.lower()), "#eeeeee")
            box = FancyBboxPatch((x, -row - 0.15), 2.4, 0.3, boxstyle="round,pad=0.04",
                                 facecolor=color, edgecolor="black", linewidth=0.6)  # fmt: skip
            ax.add_patch(box)
            ax.text(x + 1.2, -row, label, ha="center", va="center", fontsize=7.5)
            if row:
                ax.add_patch(FancyArrowPatch((x + 1.2, 1 - row - 0.2), (x + 1.2, -row + 0.2),
                                             arrowstyle="->", mutation_scale=8))  # fmt: skip
    right = 3.6 * len(stacks) - 0.4
    for col, start, end, label in skips:
        if not (0 <= start < end < len(list(stacks.values())[col])):
            raise ValueError(f"skip {(col, start, end)} does not join two boxes of column {col}")
        x, w = 3.6 * col + 2.45, 0.25 * max(1, end - start - 2)  # nested skips: wider
        ax.plot([x, x + w, x + w], [-start, -start, -end], color=OUTLINE, lw=0.9)
        ax.add_patch(FancyArrowPatch((x + w, -end), (x, -end), arrowstyle="->",
                                     mutation_scale=8, color=OUTLINE))  # fmt: skip
        ax.text(x + w + 0.07, -(start + end) / 2, label, fontsize=7, color=OUTLINE, va="center")
        right = max(right, x + w + 0.2)  # labels may stand outside the axes
    ax.set_xlim(-0.2, right)
    ax.set_ylim(-depth + 0.4, 1.0)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig
