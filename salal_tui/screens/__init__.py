"""Screens: labeling (main), the grid, help, quit confirmation, end-of-run summary, zoom, review."""

from .grid import GridScreen
from .help import HelpScreen
from .label import LabelScreen
from .quit import QuitScreen
from .review import ReviewScreen
from .summary import SummaryScreen
from .zoom import ZoomScreen

__all__ = [
    "GridScreen",
    "HelpScreen",
    "LabelScreen",
    "QuitScreen",
    "ReviewScreen",
    "SummaryScreen",
    "ZoomScreen",
]
