"""How fast each backbone of `--backbone` reads images on this machine: images a second of the
embedding pass at the backbone's input size, the network built by its family's library with
its architecture alone (speed does not depend on the weights' values, so no download is
needed), in batches of 32 on the CPU or 256 on a GPU, as the engine embeds.

    python benchmarks/backbone_speed.py                 # every backbone whose library is here
    python benchmarks/backbone_speed.py --backbones efficientnet_lite0,resnet18 --images 256

Prints a table on stderr and the figures as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from salal_core.backbones.catalog import CATALOG, BackboneSpec, import_extra
from salal_core.errors import SalalError
from salal_core.runtime import autocast, memory_format


def architecture(spec: BackboneSpec) -> torch.nn.Module:
    """The network as the engine runs it (pooled features out), with untrained weights."""
    if spec.family == "torchvision":
        from torchvision.models import get_model

        net: torch.nn.Module = get_model(spec.architecture, weights=None)
    elif spec.family == "timm":
        kwargs: dict[str, Any] = {"num_classes": 0}
        if spec.architecture.startswith("vit"):
            kwargs["img_size"] = spec.input_size
        net = import_extra("timm", spec).create_model(spec.architecture, **kwargs)
    else:
        net = import_extra("open_clip", spec).create_model(spec.architecture).visual
    return net.eval()


@torch.inference_mode()
def images_per_second(spec: BackboneSpec, device: torch.device, images: int) -> float:
    net = architecture(spec).to(device).to(memory_format=memory_format(device))
    batch = 256 if device.type == "cuda" else 32
    x = torch.randn(batch, 3, spec.input_size, spec.input_size, device=device)
    x = x.contiguous(memory_format=memory_format(device))
    with autocast(device):
        net(x)  # warm-up: kernels chosen, memory allocated
    if device.type == "cuda":
        torch.cuda.synchronize()
    started, done = time.perf_counter(), 0
    while done < images:
        with autocast(device):
            net(x)
        done += batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - started)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backbones", default=",".join(CATALOG))
    p.add_argument("--images", type=int, default=128, help="images timed per backbone")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    console = Console(stderr=True)
    rows = []
    for name in args.backbones.split(","):
        spec = CATALOG[name]
        try:
            rate = images_per_second(spec, device, args.images)
        except SalalError as exc:  # its extra is not installed
            console.print(f"[dim]{name}: {exc}")
            continue
        rows.append(
            {
                "backbone": name,
                "params_millions": spec.params_millions,
                "download_mb": spec.download_mb,
                "dim": spec.dim,
                "images_per_second": rate,
            }
        )
        console.print(f"[dim]{name}: {rate:.1f} images/s")
    table = Table(title=f"embedding throughput on {device} ({torch.get_num_threads()} threads)")
    for column in ("backbone", "params (M)", "download (MB)", "features", "images/s"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            r["backbone"],
            f"{r['params_millions']:.1f}",
            f"{r['download_mb']:.0f}",
            str(r["dim"]),
            f"{r['images_per_second']:.1f}",
        )
    console.print(table)
    json.dump({"device": str(device), "threads": torch.get_num_threads(), "rows": rows}, sys.stdout)
    print()
    return rows


if __name__ == "__main__":
    main()
