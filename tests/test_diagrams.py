import ast
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from torch import nn  # noqa: E402

import d2lmini  # noqa: E402
from d2lmini import diagrams  # noqa: E402


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def texts(ax):
    return [t.get_text() for t in ax.texts]


def test_draw_grid_draws_one_square_and_one_number_per_entry(ax):
    cells = diagrams.draw_grid(ax, torch.arange(12.0).reshape(3, 4), title="input")
    assert len(cells) == 12
    assert texts(ax) == [str(v) for v in range(12)] + ["input"]
    # row 0 is at the top: cell (0, 0) lies above cell (1, 0), cell (0, 1) right of it
    assert cells[0].get_xy() == (0, -1) and cells[4].get_xy() == (0, -2)
    assert cells[1].get_xy() == (1, -1)


def test_draw_grid_places_the_grid_at_its_origin(ax):
    cells = diagrams.draw_grid(ax, [[1, 2], [3, 4]], origin=(5.0, 2.0))
    assert cells[0].get_xy() == (5.0, 1.0) and cells[3].get_xy() == (6.0, 0.0)


def test_highlight_shades_the_window_and_frames_it(ax):
    cells = diagrams.draw_grid(ax, torch.zeros(3, 3), highlight=(1, 1, 2, 2))
    lit = [k for k, c in enumerate(cells) if to_hex(c.get_facecolor()) == diagrams.HIGHLIGHT]
    assert lit == [4, 5, 7, 8]
    frames = [p for p in ax.patches if p not in cells]
    assert len(frames) == 1 and frames[0].get_xy() == (1, -3)
    assert (frames[0].get_width(), frames[0].get_height()) == (2, 2)


def test_several_windows_and_a_muted_border(ax):
    muted = torch.ones(4, 4, dtype=torch.bool)
    muted[1:3, 1:3] = False
    cells = diagrams.draw_grid(ax, torch.zeros(4, 4), muted=muted,
                               highlight=[(0, 0, 1, 1), (3, 3, 1, 1)])  # fmt: skip
    colours = [to_hex(c.get_facecolor()) for c in cells]
    assert colours.count(diagrams.HIGHLIGHT) == 2
    assert colours.count(diagrams.MUTED) == 12 - 2
    assert colours.count("#ffffff") == 4
    assert len(ax.patches) == 16 + 2


def test_numbers_use_the_format(ax):
    diagrams.draw_grid(ax, [[0.5, 1.25]], fmt="{:.1f}")
    assert texts(ax) == ["0.5", "1.2"]


@pytest.mark.parametrize("bad", [[], [1, 2, 3], [[1, 2], [3]], torch.zeros(2, 0)])
def test_draw_grid_rejects_what_is_not_a_matrix(ax, bad):
    with pytest.raises(ValueError):
        diagrams.draw_grid(ax, bad)


def test_draw_grid_rejects_a_window_outside_the_grid_or_a_wrong_mask(ax):
    with pytest.raises(ValueError, match="does not fit"):
        diagrams.draw_grid(ax, torch.zeros(3, 3), highlight=(2, 2, 2, 2))
    with pytest.raises(ValueError, match="muted"):
        diagrams.draw_grid(ax, torch.zeros(3, 3), muted=torch.zeros(2, 3, dtype=torch.bool))


def test_grid_figure_gives_blank_axes():
    fig, ax = diagrams.grid_figure((4, 2))
    assert tuple(fig.get_size_inches()) == (4, 2) and not ax.axison
    plt.close(fig)


def test_show_maps_uses_grey_for_images_and_a_centred_map_for_signed_ones():
    image = torch.rand(1, 8, 8)
    signed = torch.randn(8, 8) * 3
    axes = diagrams.show_maps([image, signed], titles=["image", "edges"])
    assert [a.get_title() for a in axes] == ["image", "edges"]
    grey, centred = axes[0].images[0], axes[1].images[0]
    assert grey.get_cmap().name == "gray" and grey.get_array().shape == (8, 8)
    low, high = centred.get_clim()
    assert low == -high == -signed.abs().max().item()
    plt.close(axes[0].figure)


def test_show_maps_wants_one_title_per_map():
    with pytest.raises(ValueError, match="titles"):
        diagrams.show_maps([torch.rand(4, 4)] * 2, titles=["one"])


def test_matplotlib_is_imported_inside_the_functions_only():
    """`import d2lmini.diagrams` stays light: no module-level matplotlib import."""
    tree = ast.parse(Path(diagrams.__file__).read_text(encoding="utf-8"))
    for stmt in tree.body:
        if isinstance(stmt, ast.If):  # `if TYPE_CHECKING:` imports only for type hints
            assert ast.unparse(stmt.test) == "TYPE_CHECKING"
            continue
        modules = [a.name for a in getattr(stmt, "names", [])] + [getattr(stmt, "module", "")]
        assert not any(m and m.startswith("matplotlib") for m in modules), ast.unparse(stmt)


def test_layer_stacks_draws_a_box_per_layer_and_the_skips():
    from matplotlib.patches import FancyBboxPatch

    fig = diagrams.layer_stacks(
        {"block": ["input", "3×3 conv", "BN", "+"], "net": ["image", "dense 10"]},
        skips=[(0, 0, 3, "identity")], title="t",
    )  # fmt: skip
    ax = fig.axes[0]
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == 6
    colors = {t.get_text(): b.get_facecolor() for t, b in zip(ax.texts[1:], boxes)}
    assert to_hex(colors["3×3 conv"]) == diagrams.LAYER_COLORS["conv"]
    assert {"block", "net", "identity", "dense 10"} <= set(texts(ax))
    plt.close(fig)
    with pytest.raises(ValueError, match="does not join"):
        diagrams.layer_stacks({"a": ["x", "y"]}, skips=[(0, 1, 2, "bad")])


def test_layer_label_names_each_kind_of_layer_with_its_sizes():
    cases = {
        nn.Conv2d(1, 96, 11, stride=4): "conv 11×11, 96 /4",
        nn.Conv2d(3, 8, (1, 3)): "conv 1×3, 8",
        nn.MaxPool2d(3, stride=2): "max pool 3×3 /2",
        nn.AvgPool2d(2): "avg pool 2×2 /2",  # the stride defaults to the kernel
        nn.MaxPool2d(3, stride=1, padding=1): "max pool 3×3",
        nn.Linear(84, 10): "dense 10",
        nn.Dropout(0.25): "dropout 0.25",
        nn.BatchNorm1d(4): "batch norm",
        nn.AdaptiveAvgPool2d(1): "global avg pool",
        nn.AdaptiveAvgPool2d((7, 7)): "avg pool to (7, 7)",
        nn.MaxPool2d([3, 3], stride=(1, 2)): "max pool 3×3 /(1, 2)",
        nn.LazyBatchNorm2d(): "batch norm",
        nn.Flatten(): "flatten",
        d2lmini.Inception(8, 2, (2, 4), (2, 4), 2): "Inception, 12",
        nn.Identity(): "Identity",
    }
    assert {layer: diagrams.layer_label(layer) for layer in cases} == cases


def test_layer_stacks_labels_a_module_column_from_its_layers():
    net = nn.Sequential(nn.Conv2d(1, 6, 5), nn.Sigmoid(), nn.AvgPool2d(2), nn.ReLU(),
                        nn.Flatten(), nn.Linear(24, 10))  # fmt: skip
    fig = diagrams.layer_stacks({"net": net, "mixed": ["input", nn.Linear(3, 2), nn.ReLU()]})
    labels = texts(fig.axes[0])
    assert {"conv 5×5, 6 + Sigmoid", "avg pool 2×2 /2 + ReLU", "flatten", "dense 10"} <= set(labels)
    assert {"input", "dense 2 + ReLU"} <= set(labels)
    assert "Sigmoid" not in labels and "ReLU" not in labels  # activations join a box
    plt.close(fig)


def test_layer_stacks_refuses_a_module_whose_children_are_not_its_data_flow():
    with pytest.raises(TypeError, match="nn.Sequential or a list, not Residual"):
        diagrams.layer_stacks({"block": d2lmini.Residual(4, 4)})


def test_nested_skips_get_arcs_of_their_own_width():
    boxes = [f"stage {i}" for i in range(10)]
    fig = diagrams.layer_stacks({"u": boxes}, skips=[(0, k, 8 - k, "") for k in range(4)])
    arcs = [line.get_xdata() for line in fig.axes[0].get_lines()]
    outer = [max(x) for x in arcs]
    assert len(set(outer)) == 4 and outer == sorted(outer, reverse=True)  # no two overlap
    assert fig.axes[0].get_xlim()[1] > max(outer)  # the widest arc is inside the axes
    plt.close(fig)
