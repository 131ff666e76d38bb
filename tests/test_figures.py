"""Figures: a PNG of 200 dpi with an SVG beside it (jazbat_jax.figures.save_figure), accuracy in %, and the
profile's bars on linear axes from 0 with their values written on them."""
import json
from pathlib import Path
from xml.etree import ElementTree

import pytest
from PIL import Image

from jazbat_jax.figures import PNG_DPI
from jazbat_jax.train import plots

ROOT = Path(__file__).resolve().parents[1]
HISTORY = [{"epoch": e, "train_accuracy": a, "val_accuracy": a - 0.05, "train_loss": 1 / e, "val_loss": 1.2 / e}
           for e, a in ((1, 0.4), (2, 0.55), (3, 0.6))]
REPORT = {"class_names": ["a", "b"], "confusion": [[3, 1], [0, 4]], "confusion_row_pct": [[75.0, 25.0], [0.0, 100.0]],
          "per_class": {"a": {"precision": 1.0, "recall": 0.75, "f1": 0.86}, "b": {"precision": 0.8, "recall": 1.0,
                                                                                  "f1": 0.89}}}


def _check_pair(png: Path) -> None:
    with Image.open(png) as image:
        assert image.format == "PNG" and round(image.info["dpi"][0]) == PNG_DPI == 200
    svg = png.with_suffix(".svg")
    assert ElementTree.parse(svg).getroot().tag.endswith("svg")


def test_run_figures_are_png_and_svg(tmp_path):
    plots.plot_curves(HISTORY, tmp_path / "curves.png", num_classes=3)
    plots.plot_confusion(REPORT, tmp_path / "confusion.png")
    plots.plot_per_class(REPORT, tmp_path / "per_class.png")
    for name in ("curves", "confusion", "per_class"):
        _check_pair(tmp_path / f"{name}.png")
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".png"] * 3 + [".svg"] * 3  # no temporary files left


def test_accuracy_is_plotted_in_percent():
    ax_acc = plots.curves_figure(HISTORY, num_classes=3).axes[0]
    assert ax_acc.get_ylabel() == "accuracy (%)"
    train, val, chance = (line.get_ydata() for line in ax_acc.get_lines())
    assert list(train) == pytest.approx([40, 55, 60]) and list(val) == pytest.approx([35, 50, 55])
    assert list(chance) == pytest.approx([100 / 3] * 2)


def test_profile_bars_start_at_zero_on_linear_axes_with_their_values(tmp_path):
    pytest.importorskip("onnxruntime")
    from conversion import profile

    report = json.loads((ROOT / "docs" / "export-profile" / "profile.json").read_text())
    latency, size = profile.figure(report).axes[:2]
    for ax in (latency, size):
        assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    labels = [t.get_text() for t in size.texts]
    jazbat = next(r for r in report["models"] if r["name"] == "jazbat_net_1d")
    assert f"{jazbat['artifact_bytes']['tflite_dynamic_int8'] / 1e3:,.0f}" in labels  # the 98 KB INT8 file
    paths = profile.plot(report, tmp_path / "profile.png")
    assert paths == [tmp_path / "profile.png", tmp_path / "profile.svg"]
    _check_pair(paths[0])
