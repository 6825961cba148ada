"""Screens: labeling (main), help, quit confirmation, end-of-run summary."""

from .help import HelpScreen
from .label import LabelScreen
from .quit import QuitScreen
from .summary import SummaryScreen

__all__ = ["HelpScreen", "LabelScreen", "QuitScreen", "SummaryScreen"]
