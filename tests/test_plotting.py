import matplotlib
import pytest

matplotlib.use("Agg")

import torch  # noqa: E402

import d2lmini  # noqa: E402


def test_plot_draws_one_line_per_curve():
    x = torch.arange(5.0)
    axes = d2lmini.plot(x, [x, x**2], xlabel="x", legend=["x", "x^2"])
    assert len(axes.get_lines()) == 2
    assert axes.get_xlabel() == "x"


def test_plot_of_one_sequence_uses_its_index():
    axes = d2lmini.plot([3.0, 1.0, 2.0])
    (line,) = axes.get_lines()
    assert list(line.get_xdata()) == [0, 1, 2]


def test_animator_collects_points_outside_jupyter():
    animator = d2lmini.Animator(legend=["a", "b"])
    animator.add(1, (0.5, None))
    animator.add(2, (0.4, 0.9))
    assert animator.X == [[1, 2], [2]] and animator.Y == [[0.5, 0.4], [0.9]]


def test_show_images_makes_a_grid():
    axes = d2lmini.show_images(torch.rand(6, 1, 8, 8), 2, 3, titles=list("abcdef"))
    assert len(axes) == 6 and axes[5].get_title() == "f"


def test_animator_draws_each_curve_on_its_panel_with_one_legend_under_them():
    import matplotlib.pyplot as plt

    animator = d2lmini.Animator("epoch", ("loss", "accuracy"), ["loss", "train", "test"],
                                panels=(0, 1, 1))  # fmt: skip
    for x, ys in [(1, (2.0, 0.5, 0.4)), (2, (1.0, 0.7, 0.6))]:
        animator.add(x, ys)
    loss, acc = animator.axes
    assert [list(line.get_ydata()) for line in loss.get_lines()] == [[2.0, 1.0]]
    assert [list(line.get_ydata()) for line in acc.get_lines()] == [[0.5, 0.7], [0.4, 0.6]]
    assert (loss.get_ylabel(), acc.get_ylabel(), acc.get_xlabel()) == ("loss", "accuracy", "epoch")
    (legend,) = animator.fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["loss", "train", "test"]
    assert loss.get_legend() is None and acc.get_legend() is None  # off the data
    plt.close(animator.fig)


def test_animator_wants_one_y_label_per_panel():
    with pytest.raises(ValueError, match="1 y-labels for 2 panels"):
        d2lmini.Animator(ylabel=["loss"], panels=(0, 1))
