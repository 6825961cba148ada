"""What `salal-core compare` runs side by side: an arm for each strategy, backbone and
`--fine-tune` setting, each a whole run configuration, named as the table shows it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from salal_core.backbones.catalog import AUTO, ROTNET
from salal_core.cli.commands.compare_stats import BASELINE
from salal_core.cli.options import parse_name_list
from salal_core.config import FINE_TUNE_CHOICES, FineTune, RunConfig, with_overrides
from salal_core.config_checks import validate
from salal_core.errors import SalalError


@dataclass(frozen=True)
class Arm:
    name: str
    config: RunConfig

    def with_rotation(self, checkpoint: Path) -> Arm:
        """A rotnet arm starting from the comparison's one rotation pretraining."""
        if self.config.model.backbone != ROTNET:
            return self
        pretrained = {"model.pretrained": str(checkpoint.resolve())}
        return Arm(self.name, with_overrides(self.config, pretrained))


def fine_tune_modes(text: str | None, base: RunConfig) -> list[FineTune]:
    """`--fine-tune-modes` in the order given (the first is what the others are paired with),
    or the one `--fine-tune` setting."""
    if not text:
        return [base.model.fine_tune]
    names = parse_name_list(text, list(FINE_TUNE_CHOICES), "--fine-tune mode")
    return [next(mode for mode in FINE_TUNE_CHOICES if mode == name) for name in names]


@dataclass(frozen=True)
class ArmGrid:
    """Every strategy on every backbone, and on each pretrained one every fine-tune setting."""

    base: RunConfig
    strategies: list[str]
    backbones: list[str]
    modes: list[FineTune]

    def __post_init__(self) -> None:
        if self.base.model.backbone_weights and len(self.pretrained) != 1:
            raise SalalError(
                "--backbone-weights is one network's file: compare it with --backbones "
                "rotnet,NAME for the NAME it belongs to"
            )

    @property
    def pretrained(self) -> list[str]:
        return [b for b in self.backbones if b not in (ROTNET, AUTO)]

    def config(self, strategy: str, backbone: str, mode: FineTune) -> RunConfig:
        pretrained = backbone in self.pretrained
        weights = self.base.model.backbone_weights if pretrained else None
        fine_tune = mode if pretrained else "auto"  # rotnet fine-tunes by its own switch
        model = replace(
            self.base.model, backbone=backbone, backbone_weights=weights, fine_tune=fine_tune
        )
        return with_overrides(replace(self.base, model=model), {"active.acquisition": strategy})

    def name(self, strategy: str, backbone: str, mode: FineTune) -> str:
        name = strategy if len(self.backbones) == 1 else f"{strategy} on {backbone}"
        tuned = len(self.modes) > 1 and backbone in self.pretrained
        return f"{name}, fine-tune {mode}" if tuned else name

    def arms(self) -> list[Arm]:
        """Each arm, its configuration checked, in the table's order."""
        out = [
            Arm(self.name(s, b, m), self.config(s, b, m))
            for b in self.backbones
            for m in (self.modes if b in self.pretrained else self.modes[:1])
            for s in self.strategies
        ]
        for arm in out:
            validate(arm.config)
        return out

    @property
    def against(self) -> str:
        """The arm every other is paired with: random (or the first strategy) on the first
        backbone, at the first fine-tune setting."""
        baseline = BASELINE if BASELINE in self.strategies else self.strategies[0]
        return self.name(baseline, self.backbones[0], self.modes[0])
