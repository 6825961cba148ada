"""One widget per file."""

from .class_list import ClassList
from .curve_chart import CurveChart
from .image_view import ImageView
from .metric_chart import MetricChart
from .phase_line import PhaseLine
from .query_info import QueryInfo
from .run_progress import RunProgress
from .training_charts import TrainingCharts

__all__ = [
    "ClassList",
    "CurveChart",
    "ImageView",
    "MetricChart",
    "PhaseLine",
    "QueryInfo",
    "RunProgress",
    "TrainingCharts",
]
