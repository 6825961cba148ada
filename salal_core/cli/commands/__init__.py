"""Subcommands beyond `run` and `pretrain`, each registering its own parser."""

from salal_core.cli.commands import (
    agreement,
    bench,
    compare,
    export,
    import_labels,
    model_file,
    predict,
    review,
    serve,
)
from salal_core.cli.options import Register

REGISTER: list[Register] = [
    agreement.register,
    bench.register,
    compare.register,
    export.register,
    import_labels.register,
    model_file.register,
    predict.register,
    review.register,
    serve.register,
]
