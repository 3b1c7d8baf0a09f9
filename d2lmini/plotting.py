"""Plotting helpers: SVG figures in notebooks, a one-call line plot and a live plot.

matplotlib is imported only when a function here is called, so ``import d2lmini``
stays cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["Animator", "plot", "set_figsize", "show_images", "use_svg_display"]


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def use_svg_display() -> None:
    """Show figures as SVG in notebooks, without timestamps so re-runs diff cleanly.

    Differs from d2l: the SVG files carry no date and a fixed hash salt, so running a
    notebook twice stores identical figures; outside a notebook (a script, a test) it
    changes no display setting, only the SVG hash salt.
    """
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "d2lmini"
    if _in_notebook():
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("svg", metadata={"Date": None})


def set_figsize(figsize: tuple[float, float] = (3.5, 2.5)) -> None:
    """Use SVG output and set the default figure size in inches (as d2l does).

    :param figsize: ``(width, height)`` in inches.
    """
    import matplotlib.pyplot as plt

    use_svg_display()
    plt.rcParams["figure.figsize"] = figsize


def _set_axes(
    axes: Axes, xlabel: str | None, ylabel: str | None, xlim: tuple[float, float] | None,
    ylim: tuple[float, float] | None, xscale: str, yscale: str, legend: Sequence[str] | None,
) -> None:  # fmt: skip
    axes.set(xlabel=xlabel or "", ylabel=ylabel or "", xscale=xscale, yscale=yscale)
    if xlim is not None:
        low, high = xlim
        # one epoch gives (1, 1): widen it, or matplotlib warns of a singular transform
        axes.set_xlim((low - 0.5, high + 0.5) if low == high else xlim)
    if ylim is not None:
        axes.set_ylim(ylim)
    if legend:
        axes.legend(legend)
    axes.grid(True)


def plot(
    X: Any, Y: Any = None, xlabel: str | None = None, ylabel: str | None = None,
    legend: Sequence[str] | None = None, xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None, xscale: str = "linear", yscale: str = "linear",
    fmts: Sequence[str] = ("-", "m--", "g-.", "r:"), figsize: tuple[float, float] = (3.5, 2.5),
    axes: Axes | None = None,
) -> Axes:  # fmt: skip
    """Plot one or several curves.

    ``plot(y)`` plots a sequence against its index; ``plot(x, [y1, y2])`` plots
    several curves against the same ``x``. Tensors are accepted, also ones that
    require gradients or live on a GPU (they are detached and copied to the CPU).

    Differs from d2l: it returns the ``Axes`` (d2l returns ``None``) and accepts tensors
    that require gradients or live on a GPU (d2l's raises). The curves, labels, scales,
    limits and legend drawn are the same.

    :returns: the matplotlib ``Axes`` drawn on.
    """
    import matplotlib.pyplot as plt

    def to_list(v: Any) -> Any:
        return v.detach().cpu().numpy() if hasattr(v, "detach") else v

    def has_one_axis(v: Any) -> bool:
        v = to_list(v)
        if isinstance(v, list):  # a list of numbers, not of curves
            return not hasattr(v[0], "__len__")
        return hasattr(v, "ndim") and v.ndim == 1

    if Y is None:
        X, Y = [[]] * (1 if has_one_axis(X) else len(X)), X
    if has_one_axis(X):
        X = [X]
    if has_one_axis(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = X * len(Y)
    set_figsize(figsize)
    if axes is None:
        axes = plt.gca()
    axes.cla()
    for x, y, fmt in zip(X, Y, fmts):
        x, y = to_list(x), to_list(y)
        if len(x):
            axes.plot(x, y, fmt)
        else:
            axes.plot(y, fmt)
    _set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)
    return axes


class Animator:
    """A live line plot for training loops, on one or more panels side by side.

    ``panels`` gives each curve's panel (default, and for curves past its end: the first),
    ``ylabel`` one label per panel (or one for all), ``legend`` one name per curve; the
    legend sits under the panels, off the data. In a notebook
    the figure is redrawn in place through one display handle, so the cell keeps exactly
    one final static figure (which the HTML book shows). Outside a notebook nothing is
    drawn until :meth:`show`.

    Differs from d2l: d2l redraws with ``display`` and ``clear_output``, which wipes
    everything else the cell printed and displays the figure even in a script; ``x``
    must be one number per call (d2l also takes one ``x`` per curve); ``panels`` replaces
    d2l's ``nrows``/``ncols`` grid (whose extra axes d2l never draws on); the legend is
    the figure's, not the axes'. The points collected in ``X`` and ``Y`` are the same.
    """

    def __init__(
        self, xlabel: str | None = None, ylabel: str | Sequence[str] | None = None,
        legend: Sequence[str] | None = None, xlim: tuple[float, float] | None = None,
        ylim: tuple[float, float] | None = None, xscale: str = "linear", yscale: str = "linear",
        fmts: Sequence[str] = ("-", "m--", "g-.", "r:"), figsize: tuple[float, float] = (3.5, 2.5),
        panels: Sequence[int] = (),
    ) -> None:  # fmt: skip
        import matplotlib.pyplot as plt

        use_svg_display()
        self.panels, n = list(panels), max(panels, default=0) + 1
        self.fig, axes = plt.subplots(1, n, figsize=figsize, layout="constrained", squeeze=False)
        self.axes = list(axes[0])
        plt.close(self.fig)  # we display it ourselves, once, through a handle
        ylabels = [ylabel] * n if ylabel is None or isinstance(ylabel, str) else list(ylabel)
        if len(ylabels) != n:
            raise ValueError(f"{len(ylabels)} y-labels for {n} panels")
        self._configs = [(xlabel, y, xlim, ylim, xscale, yscale, None) for y in ylabels]
        self.fmts, self.legend = fmts, legend
        self.X: list[list[float]] = []
        self.Y: list[list[float]] = []
        self._handle: Any = None

    def add(self, x: float, ys: float | Sequence[float | None]) -> None:
        """Add one point per curve at ``x`` (``None`` skips a curve) and redraw."""
        if not isinstance(ys, Sequence):
            ys = [ys]
        if not self.X:
            self.X, self.Y = [[] for _ in ys], [[] for _ in ys]
        for i, y in enumerate(ys):
            if y is not None:
                self.X[i].append(x)
                self.Y[i].append(float(y))
        self._draw()
        self.show()

    def _draw(self) -> None:
        for ax in self.axes:
            ax.cla()
        lines = [self.axes[self.panels[i] if i < len(self.panels) else 0].plot(x, y, fmt)[0]
                 for i, (x, y, fmt) in enumerate(zip(self.X, self.Y, self.fmts))]  # fmt: skip
        for ax, config in zip(self.axes, self._configs):
            _set_axes(ax, *config)
        if self.legend and not self.fig.legends:
            self.fig.legend(lines, self.legend, loc="outside lower center", ncols=len(lines))

    def show(self) -> None:
        """Show (or update) the figure in the notebook."""
        if not _in_notebook():
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self.fig, display_id=True)
        else:
            self._handle.update(self.fig)


def show_images(
    imgs: Any, num_rows: int, num_cols: int, titles: Sequence[str] | None = None, scale: float = 1.5
) -> Any:
    """Show a grid of images (tensors of shape HxW or CxHxW, or PIL images).

    Differs from d2l: single-channel images are shown in grey (d2l uses matplotlib's
    default colour map), CxHxW tensors are accepted (d2l needs HxW or HxWxC), and the
    layout is tightened so that titles do not overlap.

    :returns: the flat array of ``Axes``, one per image slot.
    """
    import matplotlib.pyplot as plt

    use_svg_display()
    _, axes = plt.subplots(num_rows, num_cols, figsize=(num_cols * scale, num_rows * scale))
    axes = axes.flatten() if hasattr(axes, "flatten") else [axes]
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        if hasattr(img, "detach"):
            img = img.detach().cpu()
            if img.ndim == 3:
                img = img.permute(1, 2, 0) if img.shape[0] in (3, 4) else img.squeeze(0)
            img = img.numpy()
        ax.imshow(img, cmap="gray" if getattr(img, "ndim", 3) == 2 else None)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(titles[i])
    axes[0].figure.tight_layout()  # keep multi-line titles off the row above
    return axes


class _DisplayWriter:
    """A file-like object that shows tqdm's bar as one updating notebook output."""

    def __init__(self) -> None:
        self._handle: Any = None

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if not line:
            return
        from IPython.display import display

        bundle = {"text/plain": line}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def flush(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    notebook = _in_notebook()
    return tqdm(
        total=total, disable=not enabled, file=_DisplayWriter() if notebook else None,
        ncols=80, ascii=False if notebook else None, mininterval=1.0, unit="batch",
        desc="training",
    )  # fmt: skip
