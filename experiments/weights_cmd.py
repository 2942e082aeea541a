"""`python -m experiments weights fetch SOURCE`: put a named source's file into the torch hub cache.

Where a machine has no network, download the file elsewhere (the URL is in the error a training run
prints) and install it with `--from FILE`: it is copied to the cache name `weights: SOURCE` looks for,
and its sha256 is recorded beside it, so later runs find and verify it offline. Without `--from` the
file is downloaded (Google Drive through gdown, NASA's bucket over HTTPS).
"""

from __future__ import annotations

import argparse
import sys

from lightning_modules.nets.swin import DEPTHS
from lightning_modules.weight_files import WeightsUnavailable, fetch
from lightning_modules.weights import SOURCES, micronet_url, published_swin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments weights", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    get = commands.add_parser("fetch", help="download (or --from a local file) into the torch hub cache")
    named = sorted(name for name, source in SOURCES.items() if source.part != "all")
    get.add_argument("source", choices=named)
    get.add_argument("--depth", choices=sorted(DEPTHS), help="Swin-T depth (microlite, imagenet-microlite)")
    get.add_argument("--encoder", help="CNN encoder (micronet, imagenet-micronet), e.g. resnet50")
    get.add_argument("--from", dest="local", help="a downloaded copy of the file to install instead")
    args = parser.parse_args(argv)
    try:
        if SOURCES[args.source].part == "swin":
            if not args.depth:
                parser.error(f"{args.source} needs --depth ({' or '.join(sorted(DEPTHS))})")
            path = published_swin(args.source, args.depth, args.local)
        else:
            if not args.encoder:
                parser.error(f"{args.source} needs --encoder, e.g. --encoder resnet50")
            url = micronet_url(args.encoder, args.source)
            path = fetch(url, local=args.local, install=f"{args.source} --encoder {args.encoder}")
    except WeightsUnavailable as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.source}: {path}")
    return 0
