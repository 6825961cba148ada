"""Screens: labeling (main), help, quit confirmation, end-of-run summary, zoom, review."""

from .help import HelpScreen
from .label import LabelScreen
from .quit import QuitScreen
from .review import ReviewScreen
from .summary import SummaryScreen
from .zoom import ZoomScreen

__all__ = ["HelpScreen", "LabelScreen", "QuitScreen", "ReviewScreen", "SummaryScreen", "ZoomScreen"]
