"""One factory opens a run for the app, `--auto-oracle`, the headless CLI and the tests, so
that they cannot drift apart: validate, open (or create) the run directory, check what a resume
may change, save the configuration, pick the oracle."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from salal_core.backbones.choice import resolve_backbone
from salal_core.config import RunConfig, with_overrides
from salal_core.config_checks import validate
from salal_core.errors import SalalError
from salal_core.run.labelers import login_name
from salal_core.run.oracle import HumanOracle
from salal_core.run.session import RunRequest, Session
from salal_core.run.store import RunStore
from salal_core.run.summary import OracleKind
from salal_core.runtime import resolve_device
from salal_core.settings.resume import check_resume


def open_session(
    config: RunConfig | None,
    run_dir: Path,
    *,
    oracle: OracleKind = "auto",
    resume: bool = False,
    overrides: Mapping[str, Any] | None = None,
    class_names: Sequence[str] | None = None,
    labels_file: Path | None = None,
) -> Session:
    """A fresh run takes `config` (with `overrides` applied); a resumed one reads the run's own
    config.toml and applies only the overrides a resume may change, refusing any other that
    differs. Nothing heavy happens here: data loading and training wait for the engine, which
    the app runs beside its interface."""
    if labels_file is not None and resume:
        raise SalalError(
            "--labels seeds a new run; to add labels to this one: salal-core import-labels "
            f"{run_dir} {labels_file}"
        )
    if labels_file is not None and not labels_file.exists():
        raise SalalError(f"{labels_file} does not exist; pass a CSV of path,class or a folder")
    if not resume:
        if config is None:
            raise ValueError("a fresh run needs a config")
        config = with_overrides(config, dict(overrides or {}))
        validate(config)
        resolve_device(config.device)  # fail now, with one line, not in a worker thread
        config, fallback = resolve_backbone(config)
        notices = (fallback,) if fallback else ()
    else:
        notices = ()
    store = RunStore(run_dir, create=not resume)
    try:
        if resume:
            stored = store.load_config()
            allowed = check_resume(stored, overrides or {}, class_names, store.class_names())
            config = with_overrides(stored, allowed)
            validate(config)
            resolve_device(config.device)
        assert config is not None
        store.save_config(config)
    except BaseException:
        store.close()
        raise
    # A resumed folder without class folders keeps the classes it was created with.
    names = tuple(class_names or (store.class_names() if resume else ()))
    request = RunRequest(store.dir, oracle, resume, names, labels_file, notices)
    human = HumanOracle(journal=store, labeler=login_name()) if oracle == "human" else None
    return Session(config, store, request, human)
