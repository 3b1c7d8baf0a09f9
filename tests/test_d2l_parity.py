"""d2lmini against d2l 1.0.3: every name both define is the same, or a documented difference.

Readers move between this book and d2l.ai. For every public name of ``d2lmini`` that
``d2l.torch`` also has (found by intersecting the two ``dir()``s, plus the renamed pairs
in ``RENAMED``), a test below feeds both the same input and asserts the same result, or
the name is listed as differing in ``book/d2l_readers.md`` and its docstring says
"Differs from d2l: ...". ``test_every_shared_name_is_checked_or_documented`` enforces
this.

d2l pins old versions of everything, so it is installed *without* its pins
(``pip install --no-deps --target``) into a cache folder, once, together with the few
packages ``from d2l import torch`` imports that are missing here. If that fails, the
tests fail with pip's error: they never skip silently.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import d2lmini  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
READERS_PAGE = ROOT / "book" / "d2l_readers.md"
D2L_VERSION = "1.0.3"
RENAMED = {"train": "train_ch6", "evaluate_accuracy": "evaluate_accuracy_gpu"}
# what `from d2l import torch` imports beyond torch, torchvision, numpy and matplotlib
D2L_IMPORTS = {
    "pandas": "pandas",
    "scipy": "scipy",
    "requests": "requests",
    "IPython": "ipython",
    "matplotlib_inline": "matplotlib-inline",
    "PIL": "pillow",
}
CHECKED: set[str] = set()  # d2lmini names with a parity test below


def parity(*names: str):
    """Register the d2lmini names that the decorated test compares with d2l."""
    CHECKED.update(names)
    return lambda test: test


# --- installing d2l 1.0.3 without its pins ---------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    tag = f"d2l-{D2L_VERSION}-py{sys.version_info.major}{sys.version_info.minor}"
    return Path(base) / "d2lmini-tests" / tag


def installed_d2l_version() -> str | None:
    try:
        return importlib.metadata.version("d2l")
    except importlib.metadata.PackageNotFoundError:
        return None


def pip_install(target: Path, args: list[str]) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-input",
        "--disable-pip-version-check",
        "--target",
        str(target),
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(
            f"installing d2l for the parity tests failed:\n$ {' '.join(command)}\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )


def install(folder: Path) -> None:
    """Install d2l (no deps) into folder/d2l and missing imports into folder/deps."""
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    pip_install(tmp / "d2l", ["--no-deps", f"d2l=={D2L_VERSION}"])
    missing = [
        dist for module, dist in D2L_IMPORTS.items() if importlib.util.find_spec(module) is None
    ]
    if missing:
        # pin what is already installed so that compiled wheels match it
        pins = tmp / "constraints.txt"
        pins.write_text(
            "".join(
                f"{dist}=={importlib.metadata.version(dist)}\n"
                for dist in ("numpy", "torch", "pillow", "matplotlib")
                if importlib.util.find_spec(dist if dist != "pillow" else "PIL")
            )
        )
        pip_install(tmp / "deps", ["-c", str(pins), *missing])
    (tmp / "complete").write_text(" ".join(missing))
    try:
        os.replace(tmp, folder)
    except OSError:  # another session installed it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_failed_install_fails_loudly_with_pips_error(tmp_path):
    with pytest.raises(
        pytest.fail.Exception, match="(?s)installing d2l.*--no-index.*No matching distribution"
    ):
        pip_install(tmp_path, ["--no-index", "d2l-no-such-package==0"])


@pytest.fixture(scope="session")
def d2l():
    """``from d2l import torch as d2l`` for d2l 1.0.3, installed on first use."""
    if installed_d2l_version() != D2L_VERSION or any(
        importlib.util.find_spec(module) is None for module in D2L_IMPORTS
    ):
        folder = cache_dir()
        if not (folder / "complete").is_file():
            install(folder)
        sys.path.insert(0, str(folder / "d2l"))  # only d2l lives there
        sys.path.append(str(folder / "deps"))  # installed packages take precedence
        sys.modules.pop("d2l", None)
    import d2l as d2l_package
    from d2l import torch as d2l_torch

    assert d2l_package.__version__ == D2L_VERSION, d2l_package.__file__
    return d2l_torch


# --- the page for d2l readers ---------------------------------------------------------

ROW = re.compile(r"^\| \{(?:func|class)\}`d2lmini\.(\w+)` \| `d2l\.(\w+)` \| (same|differs) \|")


def readers_table() -> dict[str, tuple[str, str]]:
    """{d2lmini name: (d2l name, "same" or "differs")} from book/d2l_readers.md."""
    rows = {}
    for line in READERS_PAGE.read_text().splitlines():
        match = ROW.match(line)
        if match:
            rows[match[1]] = (match[2], match[3])
    return rows


def shared_names(d2l) -> dict[str, str]:
    shared = {name: name for name in set(dir(d2l)) & set(d2lmini.__all__)}
    for ours, theirs in RENAMED.items():
        assert hasattr(d2l, theirs) and ours in d2lmini.__all__
        shared[ours] = theirs
    return shared


def test_every_shared_name_is_checked_or_documented(d2l):
    shared, table = shared_names(d2l), readers_table()
    assert sorted(table) == sorted(shared), "rows of book/d2l_readers.md != shared names"
    for name, (theirs, status) in table.items():
        assert theirs == shared[name], f"{name}: the page says d2l.{theirs}"
        if status == "same":
            assert name in CHECKED, f"{name} is listed as the same but no test compares it"
        else:
            doc = inspect.getdoc(getattr(d2lmini, name)) or ""
            assert "Differs from d2l:" in doc, f"d2lmini.{name}'s docstring must say how"


# --- data ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fashion")
    if d2lmini.data.SYSTEM_DIR.is_dir():
        return d2lmini.prepare_fashion_mnist(root, download=False)
    return d2lmini.prepare_fashion_mnist()


@pytest.fixture
def d2l_loader(d2l, data_root, tmp_path, monkeypatch):
    """d2l's loader, offline: it reads ../data, which holds our files; no worker processes."""
    (tmp_path / "data" / "FashionMNIST").mkdir(parents=True)
    (tmp_path / "data" / "FashionMNIST" / "raw").symlink_to(data_root / "FashionMNIST" / "raw")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setattr(d2l, "get_dataloader_workers", lambda: 0)
    return d2l.load_data_fashion_mnist


@parity("load_data_fashion_mnist")
def test_loader_gives_the_same_pixels_and_labels(d2l_loader, data_root):
    theirs_train, theirs_test = d2l_loader(1000)
    ours_train, ours_test = d2lmini.load_data_fashion_mnist(1000, root=data_root)
    assert len(ours_train) == len(theirs_train) and len(ours_test) == len(theirs_test)
    for (X, y), (X_ref, y_ref) in zip(ours_test, theirs_test, strict=True):
        assert X.dtype == X_ref.dtype and y.dtype == y_ref.dtype
        assert torch.equal(X, X_ref) and torch.equal(y, y_ref)
    # training: the same examples (in another random order, documented)
    assert torch.equal(ours_train.images, theirs_train.dataset.data)
    assert torch.equal(ours_train.labels, theirs_train.dataset.targets)
    X, y = next(iter(ours_train))
    X_ref, y_ref = next(iter(theirs_train))
    assert X.shape == X_ref.shape and y.shape == y_ref.shape


@parity("load_data_fashion_mnist")
@pytest.mark.parametrize("resize", [64, (40, 20)])
def test_resized_pixels_are_within_one_grey_level(d2l_loader, data_root, resize):
    _, theirs = d2l_loader(250, resize=resize)
    _, ours = d2lmini.load_data_fashion_mnist(250, resize=resize, root=data_root)
    for i, ((X, y), (X_ref, y_ref)) in enumerate(zip(ours, theirs)):
        assert X.shape == X_ref.shape and torch.equal(y, y_ref)
        torch.testing.assert_close(X, X_ref, rtol=0, atol=1 / 255 + 1e-6)
        if i == 3:
            break


@parity("get_fashion_mnist_labels")
def test_text_labels(d2l):
    labels = torch.arange(10)
    assert d2lmini.get_fashion_mnist_labels(labels) == d2l.get_fashion_mnist_labels(labels)


@parity("get_dataloader_workers")
def test_dataloader_workers_differ_by_design(d2l):
    assert d2l.get_dataloader_workers() == 4  # whatever the machine
    assert 0 <= d2lmini.get_dataloader_workers() <= 4


# --- devices -------------------------------------------------------------------------


@parity("cpu", "num_gpus", "try_gpu", "try_all_gpus")
def test_devices(d2l):
    assert d2lmini.cpu() == d2l.cpu() and d2lmini.num_gpus() == d2l.num_gpus()
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        for i in range(3):  # the same without an Apple GPU (documented)
            assert d2lmini.try_gpu(i) == d2l.try_gpu(i)
    assert d2lmini.try_all_gpus() == (d2l.try_all_gpus() or [d2l.cpu()])


# --- training helpers ----------------------------------------------------------------


@parity("Timer")
def test_timer(d2l):
    ours, theirs = d2lmini.Timer(), d2l.Timer()  # both start when created
    assert ours.stop() >= 0 and theirs.stop() >= 0
    ours.times, theirs.times = [1.0, 2.0, 4.5], [1.0, 2.0, 4.5]
    assert (ours.sum(), ours.avg()) == (theirs.sum(), theirs.avg())  # no cumsum: unused


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 4, kernel_size=5, padding=2),
        nn.Sigmoid(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 14 * 14, 10),
    )


@parity("init_cnn")
def test_init_cnn(d2l):
    torch.manual_seed(0)
    ours = small_cnn().apply(d2lmini.init_cnn)
    torch.manual_seed(0)
    theirs = small_cnn().apply(d2l.init_cnn)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(p, q)


@parity("train", "evaluate_accuracy")
def test_train_matches_train_ch6(d2l, data_root, capsys):
    """Same initial weights, same batches: the same trained weights and printed line."""
    _, test_iter = d2lmini.load_data_fashion_mnist(64, root=data_root)
    batches = [batch for batch, _ in zip(test_iter, range(10))]
    cpu = torch.device("cpu")
    torch.manual_seed(0)
    theirs = small_cnn()
    d2l.train_ch6(theirs, batches, batches, 2, 0.9, cpu)  # it applies xavier init itself
    their_line = next(
        line for line in capsys.readouterr().out.splitlines() if line.startswith("loss ")
    )
    torch.manual_seed(0)
    ours = small_cnn().apply(d2lmini.init_cnn)  # d2lmini.train never re-initialises
    history = d2lmini.train(ours, batches, batches, 2, 0.9, cpu, display=False)
    assert history.summary().splitlines()[0] == their_line
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    theirs.train()
    assert d2lmini.evaluate_accuracy(ours, batches) == d2l.evaluate_accuracy_gpu(theirs, batches)
    assert not theirs.training  # d2l leaves the model in eval mode (documented)


# --- convolution ---------------------------------------------------------------------


@parity("corr2d")
def test_corr2d(d2l):
    g = torch.Generator().manual_seed(0)
    X, K = torch.randn(7, 6, generator=g), torch.randn(3, 2, generator=g)
    assert torch.equal(d2lmini.corr2d(X, K), d2l.corr2d(X, K))
    X64 = X.double()  # d2l returns float32 whatever the input (documented)
    assert d2l.corr2d(X64, K.double()).dtype == torch.float32
    assert d2lmini.corr2d(X64, K.double()).dtype == torch.float64


# --- plotting ------------------------------------------------------------------------


def drawn(axes) -> list:
    lines = [
        (list(line.get_xdata()), list(line.get_ydata()), line.get_linestyle(), line.get_color())
        for line in axes.get_lines()
    ]
    legend = axes.get_legend()
    return [
        lines,
        axes.get_xlabel(),
        axes.get_ylabel(),
        axes.get_xscale(),
        axes.get_yscale(),
        axes.get_xlim(),
        axes.get_ylim(),
        [t.get_text() for t in legend.get_texts()] if legend else None,
    ]


@parity("plot", "set_figsize")
@pytest.mark.parametrize(
    "args, kwargs",
    [
        (([3.0, 1.0, 2.0],), {}),
        (
            (torch.arange(4.0), [torch.arange(4.0), torch.arange(4.0) ** 2]),
            dict(xlabel="x", ylabel="f(x)", legend=["x", "x^2"], xlim=(0, 3)),
        ),
        (([1.0, 10.0, 100.0], [[1.0, 2.0, 3.0]]), dict(xscale="log", figsize=(5, 2))),
    ],
)
def test_plot_draws_the_same_figure(d2l, args, kwargs):
    import matplotlib.pyplot as plt

    _, (ax_ours, ax_theirs) = plt.subplots(1, 2)
    d2lmini.plot(*args, axes=ax_ours, **kwargs)
    ours_size = list(plt.rcParams["figure.figsize"])
    d2l.plot(*args, axes=ax_theirs, **kwargs)
    assert ours_size == list(plt.rcParams["figure.figsize"])
    assert drawn(ax_ours) == drawn(ax_theirs)
    plt.close("all")


@parity("Animator")
def test_animator_collects_the_same_points(d2l):
    import matplotlib.pyplot as plt

    ours = d2lmini.Animator(xlabel="epoch", legend=["loss", "acc"], xlim=(1, 3))
    theirs = d2l.Animator(xlabel="epoch", legend=["loss", "acc"], xlim=(1, 3))
    for x, ys in [(1, (0.9, None)), (2, (0.5, 0.7)), (3, (0.3, 0.8))]:
        ours.add(x, ys)
        theirs.add(x, ys)
    assert (ours.X, ours.Y) == (theirs.X, theirs.Y)
    ours_drawn, theirs_drawn = drawn(ours.axes[0]), drawn(theirs.axes[0])
    assert ours_drawn[:-1] == theirs_drawn[:-1]  # the legend is the figure's, under the plot
    assert [t.get_text() for t in ours.fig.legends[0].get_texts()] == theirs_drawn[-1]
    plt.close("all")


@parity("show_images")
def test_show_images_shows_the_same_pixels_and_titles(d2l):
    import matplotlib.pyplot as plt

    imgs = torch.rand(6, 8, 8, generator=torch.Generator().manual_seed(0))
    titles = list("abcdef")
    ours = d2lmini.show_images(imgs, 2, 3, titles=titles)
    theirs = d2l.show_images(imgs, 2, 3, titles=titles)
    for a, b in zip(ours, theirs, strict=True):
        assert a.get_title() == b.get_title()
        (im_a,), (im_b,) = a.get_images(), b.get_images()
        assert (im_a.get_array() == im_b.get_array()).all()
        assert (im_a.get_cmap().name, im_b.get_cmap().name) == ("gray", "viridis")  # documented
    plt.close("all")


@parity("use_svg_display")
def test_use_svg_display_runs_outside_jupyter(d2l):
    d2l.use_svg_display()
    d2lmini.use_svg_display()
    assert matplotlib.rcParams["svg.hashsalt"] == "d2lmini"  # reproducible SVG (documented)
