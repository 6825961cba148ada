"""Typed, frozen configuration: a dataclass per concern, from a preset, overridden by flags.

A new setting is a field here and, where it can be wrong, a check in config_checks.py; the
TOML form (config_io.py) follows the fields by itself."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Literal

from salal_core.errors import SalalError

# What the class head reads (learn/model.py). "last": the last stage pooled (8w), as in ResNet.
# "all-stages": the stem's and every stage's pooled features side by side (16w). Rotation
# features are rotation-specific by the last stage (Gidaris et al., 2018); a linear probe on
# every stage beats one on the last by 2.3 points of accuracy over 10-160 labels on a
# 5,000-image folder (BENCHMARKS.md, "Which features a probe should see").
HeadInput = Literal["last", "all-stages"]
HEAD_INPUTS: tuple[HeadInput, ...] = ("last", "all-stages")
# Whether a pretrained backbone is fine-tuned on the labels (learn/tuned_input.py): "auto" lets
# cross-validation decide each round on a GPU and keeps it frozen on a CPU; "check" asks
# cross-validation on any device; "always" fine-tunes every round; "off" never.
FineTune = Literal["auto", "check", "always", "off"]
FINE_TUNE_CHOICES: tuple[FineTune, ...] = ("auto", "check", "always", "off")


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and learning-rate schedule of one training phase."""

    optimizer: str = "sgd"  # "sgd" (Nesterov) or "adam"
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup: float = 0.1  # fraction of the phase spent ramping the rate up linearly
    schedule: str = "cosine"  # "cosine" or "linear" decay to zero after warm-up
    label_smoothing: float = 0.0
    batch_size: int = 512
    # Optimizer steps the phase takes at least, however few images it has (see README, Recipes).
    min_steps: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how much of them to use."""

    source: str | None = None  # None: download CIFAR-10
    cache_dir: str | None = None  # None: the platform's user cache
    train_limit: int = 0  # 0: everything; else a seeded, class-balanced slice
    test_limit: int = 0
    image_size: int = 32


@dataclass(frozen=True)
class ModelConfig:
    width: int = 64  # channels of the first stage; 64 is ResNet18 with 512-d features
    pretrained: str | None = None  # a pretrain.pt to start from instead of pretraining
    head_input: HeadInput = "last"  # what the class head reads (learn/model.py); not rotation's
    # Where features come from (backbones/catalog.py): "rotnet", the network above trained on
    # the folder by rotation (every preset's); a pretrained network kept frozen; or "auto",
    # the first pretrained one whose weights are at hand, resolved once when the run is
    # created: a person's default, without --preset (cli/options.py).
    backbone: str = "rotnet"
    backbone_weights: str | None = None  # a local weights file; None: the family's own cache
    fine_tune: FineTune = "auto"
    fine_tune_steps: int = 0  # optimizer steps of one fine-tuning; 0: learn/tune.py's rule


COMPILE_MODES = ("off", "default", "max-autotune-no-cudagraphs", "max-autotune", "reduce-overhead")


@dataclass(frozen=True)
class SpeedConfig:
    """How the device runs the network. None of it changes what is learned, only how fast;
    `salal-core bench --ablate` measures each switch against the others."""

    bf16: bool = True  # autocast to bfloat16 on CUDA (no loss scaling, unlike fp16)
    channels_last: bool = True  # NHWC on CUDA: cuDNN's tensor-core convolutions want it
    fused_optimizer: bool = True  # the optimizer's update in one kernel instead of a few
    compile: str = "off"  # a torch.compile mode (COMPILE_MODES); "reduce-overhead" is CUDA graphs


@dataclass(frozen=True)
class ParallelConfig:
    """More than one process (torchrun): how the ranks train together."""

    # Per-rank BatchNorm by default: no collective inside every layer's forward, and each
    # rank's share of a 512-image batch is still large enough for sound statistics.
    sync_bn: bool = False


@dataclass(frozen=True)
class PretrainConfig:
    """The rotation pretext task."""

    epochs: int = 15
    limit: int = 0  # 0: every training image; else a seeded sample of this many
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass(frozen=True)
class ActiveConfig:
    """The active-learning loop: who is asked about what, and how often."""

    acquisition: str = "entropy"
    initial_fraction: float = 0.2
    budget: float = 0.5  # stop when this fraction of the training set is labeled
    query_size: float = 0.05  # below 1: a fraction of the training set; else a count
    epochs_per_round: int = 15
    class_balanced_initial: bool = True
    committee: int = 5  # linear heads trained on bootstrap resamples, for qbc
    lookahead: int = 1  # query batches kept ahead of the oracle (a person gets 2)
    stop_when_flat: int = 0  # stop once accuracy has not risen for this many rounds (0: never)
    label_noise: float = 0.0  # share of the initial ground-truth labels flipped (to measure review)
    # Below this many training labels a round fits the head alone, to convergence, on frozen
    # features; from it on, the whole network is fine-tuned (README, Recipes).
    finetune_from: int = 0
    # From this many labels up to `finetune_from`, a round fine-tunes where k-fold
    # cross-validation on its labels says fine-tuning is not worse than the head (0: never).
    cross_validate_from: int = 0
    # That check runs only on folders of fewer than this many training images (0: any size):
    # a backbone pretrained on thousands of photos makes the fixed switch as good, in seconds.
    cross_validate_below: int = 0
    stop_when_stable: bool = False  # stop once predictions stop changing (Cohen's kappa)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass(frozen=True)
class RunConfig:
    preset: str = "fast"
    seed: int = 0
    device: str = "auto"
    # Scoring and evaluation batches in one fixed shape: inference keeps no activations, so a
    # large batch costs little memory and leaves few launches (BENCHMARKS.md has the GPU row).
    eval_batch_size: int = 8192
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    active: ActiveConfig = field(default_factory=ActiveConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)

    def initial_count(self, n_train: int) -> int:
        return max(1, round(self.active.initial_fraction * n_train))

    def target_count(self, n_train: int) -> int:
        return min(n_train, round(self.active.budget * n_train))

    def query_count(self, n_train: int) -> int:
        q = self.active.query_size
        return round(q * n_train) if q < 1 else int(q)


PRESETS: dict[str, RunConfig] = {
    # The write-up as stated. Adam at 0.3 is what it names; see README "Recipes".
    "paper": RunConfig(
        preset="paper",
        pretrain=PretrainConfig(
            epochs=100,
            optim=OptimConfig(
                optimizer="adam",
                lr=0.3,
                weight_decay=0.0,
                warmup=0.0,
                schedule="cosine",
                min_steps=2000,
            ),
        ),
        active=ActiveConfig(
            epochs_per_round=50,
            optim=OptimConfig(
                optimizer="adam",
                lr=0.3,
                weight_decay=0.0,
                warmup=0.0,
                schedule="cosine",
                min_steps=500,
            ),
        ),
    ),
    # Best accuracy per minute: short SGD phases with warm-up, label smoothing for fine-tuning.
    "fast": RunConfig(
        preset="fast",
        pretrain=PretrainConfig(
            epochs=15,
            optim=OptimConfig(
                lr=0.4, warmup=0.1, schedule="linear", batch_size=512, min_steps=1000
            ),
        ),
        active=ActiveConfig(
            epochs_per_round=15,
            optim=OptimConfig(
                lr=0.1, warmup=0.1, label_smoothing=0.2, batch_size=512, min_steps=200
            ),
        ),
    ),
    # No GPU: features worth having within minutes on a few cores. Rotation pretraining sees a
    # seeded 5,000-image sample; every image stays in the pool to be scored and labeled. In a
    # fixed CPU time a narrow network trained long buys better features than a wider one
    # trained briefly: width 8 for 26 epochs reached rotation accuracy 0.73 against 0.63 for
    # width 16 for 8, and a probe on its features 3.1 points more AUBC at 10-160 labels, in
    # less time (BENCHMARKS.md, "What buys features in a fixed CPU time"). 24 epochs took
    # 574 s on two cores, inside 10 minutes.
    "cpu": RunConfig(
        preset="cpu",
        # Inference at 64 images a batch, whose activations stay in the cores' caches: the pool
        # pass and the test split take 1.6-1.9 times less time than at 512 (BENCHMARKS.md).
        eval_batch_size=64,
        model=ModelConfig(width=8, head_input="all-stages"),
        pretrain=PretrainConfig(
            epochs=24,
            limit=5000,
            optim=OptimConfig(lr=0.2, warmup=0.1, schedule="linear", batch_size=128, min_steps=300),
        ),
        active=ActiveConfig(
            epochs_per_round=5,
            # On a 5,000-image folder the head on frozen features is ahead of fine-tuning up to
            # 40 labels and behind from 50 (BENCHMARKS.md, "The head and the switch"); on the
            # handwritten digits it is behind from 10. So from 10 labels up to 50 each round
            # asks its own labels by 3-fold cross-validation (BENCHMARKS.md, "The switch
            # decided by cross-validation"), and fine-tunes without asking from 50. On 5,000
            # photos the check is level with the fixed switch at 50 and makes rounds of seconds
            # take 17-53 s ("Five seeds on the 5,000-image folder"), so it runs on folders
            # under 2,500 images, between the largest folder it helped (1,300 digits) and that.
            finetune_from=50,
            cross_validate_from=10,
            cross_validate_below=2500,
            optim=OptimConfig(
                lr=0.05, warmup=0.1, label_smoothing=0.1, batch_size=64, min_steps=100
            ),
        ),
    ),
    # Two CPU cores in under a minute: a class-balanced slice and a narrow network.
    "tiny": RunConfig(
        preset="tiny",
        eval_batch_size=512,
        data=DataConfig(train_limit=1000, test_limit=400),
        model=ModelConfig(width=8),
        pretrain=PretrainConfig(
            epochs=5, optim=OptimConfig(lr=0.2, warmup=0.1, schedule="linear", batch_size=64)
        ),
        active=ActiveConfig(
            query_size=0.1,
            epochs_per_round=3,
            committee=3,
            optim=OptimConfig(lr=0.05, warmup=0.1, label_smoothing=0.1, batch_size=64),
        ),
    ),
}

# A person answers a few dozen images between short fine-tuning rounds, chosen by the one
# strategy the small-folders study found never worse than random labels on any folder, from
# 300 photos to 5,000 and the digits (BENCHMARKS.md, "Badge and typiclust against random").
HUMAN_ACTIVE = {"query_size": 24, "lookahead": 2, "acquisition": "typiclust"}
HUMAN_EPOCHS_PER_ROUND = {"paper": 5, "fast": 3, "cpu": 2, "tiny": 1}


def preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise SalalError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


def with_overrides(config: RunConfig, overrides: dict[str, Any]) -> RunConfig:
    """Return `config` with dotted keys replaced, e.g. {"active.budget": 0.4}; None is ignored."""
    for key, value in overrides.items():
        if value is None:
            continue
        config = _replace_path(config, key.split("."), value)
    return config


def _replace_path(obj: Any, path: list[str], value: Any) -> Any:
    head, *rest = path
    if not is_dataclass(obj) or isinstance(obj, type) or head not in {f.name for f in fields(obj)}:
        raise SalalError(f"unknown setting {head!r}")
    new = value if not rest else _replace_path(getattr(obj, head), rest, value)
    return replace(obj, **{head: new})
