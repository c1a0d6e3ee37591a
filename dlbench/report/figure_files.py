"""Saving figures: every figure of a report is written as PNG (for the page) and PDF (for a
paper), atomically, with a title that names what it shows, the dataset and the study."""

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # reports are built on machines without a display
import matplotlib.pyplot as plt  # noqa: E402

from dlbench.rundir import atomic_write_bytes  # noqa: E402

FORMATS = ("png", "pdf")
DPI = 110


def figure_title(what, dataset, study=None):
    """'MIG against reconstruction: dsprites, study quickstart' (study left out when unknown)."""
    return f"{what}: {dataset}" + (f", study {study}" if study else "")


def figure_files(folder, name):
    """The paths save_figure writes for the figure name in folder."""
    return [Path(folder) / f"{name}.{fmt}" for fmt in FORMATS]


def save_planned(planned, folder, study=None):
    """Draw and save each figure of planned ({name: a function of study= that gives its Figure}):
    {name: [png, pdf]}."""
    return {name: save_figure(make(study=study), folder, name) for name, make in planned.items()}


def save_figure(fig, folder, name):
    """Write fig as folder/name.png and folder/name.pdf (each atomically), close it, and return the
    two paths."""
    paths = []
    for fmt in FORMATS:
        buffer = io.BytesIO()
        # no creation date in the PDF: a figure drawn again from the same data is the same file
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        fig.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight", metadata=metadata)
        path = Path(folder) / f"{name}.{fmt}"
        atomic_write_bytes(path, buffer.getvalue())
        paths.append(path)
    plt.close(fig)
    return paths
