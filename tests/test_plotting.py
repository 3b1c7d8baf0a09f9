import matplotlib

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
