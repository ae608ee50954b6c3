"""``fer-ros synth KIND OUT``: write a synthetic expression data set (images, clips or a FER2013 CSV).

The drawn faces differ by class in mouth, brows and eyes; the files follow docs/formats.md, with ``faces.csv``
giving each face's box and landmarks (so no detector is needed to train on them).
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=("images", "clips", "fer2013"))
    parser.add_argument("out", help="output folder (images, clips) or CSV file (fer2013)")
    parser.add_argument("--per-class", type=int, default=50, help="images or clips per class")
    parser.add_argument("--frames", type=int, default=12, help="frames per clip")
    parser.add_argument("--image-size", type=int, default=128, help="side of each scene, pixels")
    parser.add_argument("--video-every", type=int, default=0, help="clips: write every N-th clip as an .avi file")
    parser.add_argument("--val", type=float, default=0.2, help="fraction of each class in the val split")
    parser.add_argument("--test", type=float, default=0.2, help="fraction of each class in the test split")
    parser.add_argument("--occlusion", type=float, default=0.2, help="probability of a random occluder")
    parser.add_argument("--seed", type=int, default=0, help="random seed: the same seed writes the same files")
    parser.add_argument("--force", action="store_true",
                        help="replace OUT when it exists and is not empty (default: refuse, naming it)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_ros_training.data.synthetic import SynthConfig
    from fer_ros_training.data.synthetic_files import (SplitFractions, write_clip_folders, write_fer2013_csv,
                                                       write_image_folders)

    cfg = SynthConfig(image_size=args.image_size, occlusion_prob=args.occlusion)
    fractions = SplitFractions(args.val, args.test)
    out = Path(args.out)
    if args.kind == "images":
        write_image_folders(out, args.per_class, args.seed, cfg, fractions, force=args.force)
    elif args.kind == "clips":
        write_clip_folders(out, args.per_class, args.frames, args.seed, cfg, fractions, args.video_every,
                           force=args.force)
    else:
        write_fer2013_csv(out, args.per_class, args.seed, cfg, fractions, force=args.force)
    print(f"wrote {args.per_class} {args.kind if args.kind != 'fer2013' else 'rows'} per class to {out}")
    return 0
