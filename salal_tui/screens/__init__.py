"""Screens: labeling (main), help, quit confirmation, end-of-run summary."""

from .help import HelpScreen
from .label import LabelScreen
from .quit import QuitScreen
from .summary import SummaryScreen
from .zoom import ZoomScreen

__all__ = ["HelpScreen", "LabelScreen", "QuitScreen", "SummaryScreen", "ZoomScreen"]
