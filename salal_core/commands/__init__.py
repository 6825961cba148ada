"""Subcommands beyond `run` and `pretrain`, each registering its own parser."""

from ..options import Register
from . import bench, compare, export, import_labels, model_file, predict, review

REGISTER: list[Register] = [
    bench.register,
    compare.register,
    export.register,
    import_labels.register,
    model_file.register,
    predict.register,
    review.register,
]
