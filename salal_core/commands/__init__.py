"""Subcommands beyond `run`, each registering its own parser."""

from . import compare, export, predict
from .bench import register as register_bench

REGISTER = [compare.register, export.register, predict.register, register_bench]
