"""``fer-ros make-bag``: a rosbag2 recording from a video file or a folder of images, as a camera would have sent it.

    fer-ros make-bag clip.mp4 --out clip_bag                 # CompressedImage JPEG on /camera/image_raw/compressed
    fer-ros make-bag frames/ --out frames_bag --fps 15 --raw # sensor_msgs/Image bgr8 on /camera/image_raw

JPEG is the default because raw frames are large (a 472-frame 640x480 clip is about 435 MB raw, a few tens of MB as
JPEG). Header stamps are ``--start + index / fps`` seconds, so with the default ``--start 0`` a frame's stamp is its
time into the video: labels written while annotating the video (``fer-ros annotate clip.mp4``) apply to the bag.
A frame that cannot be decoded is skipped and counted. Nothing is left behind when the command fails or is stopped.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from fer_ros.bag.bag_io import add_output_format_arguments, check_format
from fer_ros.cli_options import add_progress
from fer_ros.errors import ConfigError

DEFAULT_JPEG_QUALITY = 90  # visually lossless for faces, ~10x smaller than raw
RAW_TOPIC, COMPRESSED_TOPIC = "/camera/image_raw", "/camera/image_raw/compressed"  # image_transport's names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", type=Path, help="a video file (anything OpenCV reads: .mp4, .avi, .mkv, ...) or a "
                                                  "folder of images, taken in name order")
    parser.add_argument("--out", type=Path, required=True, help="the bag folder to write (must not exist)")
    parser.add_argument("--topic", help=f"image topic (default: {COMPRESSED_TOPIC}, or {RAW_TOPIC} with --raw)")
    encoding = parser.add_mutually_exclusive_group()
    encoding.add_argument("--raw", action="store_true",
                          help="sensor_msgs/Image bgr8 instead of CompressedImage (about 0.9 MB per 640x480 frame)")
    encoding.add_argument("--png", action="store_true", help="CompressedImage as PNG (lossless, larger) instead of "
                                                              "JPEG")
    parser.add_argument("--jpeg-quality", type=int, default=DEFAULT_JPEG_QUALITY, help="JPEG quality, 1-100")
    parser.add_argument("--fps", type=float, help="frame rate of the stamps (default: the video's own rate; 30 for "
                                                  "an image folder)")
    parser.add_argument("--start", type=float, default=0.0, help="header stamp of the first frame, in seconds")
    parser.add_argument("--max-frames", type=int, default=0, help="write at most this many frames (0: all)")
    parser.add_argument("--frame-id", default="camera", help="header frame_id of the images")
    add_output_format_arguments(parser, "the bag")
    add_progress(parser)


def _check(args: argparse.Namespace) -> None:
    check_format(args.format_version, args.storage)
    if not 1 <= args.jpeg_quality <= 100:
        raise ConfigError(f"--jpeg-quality must be 1..100, got {args.jpeg_quality}")
    if args.fps is not None and not args.fps > 0:
        raise ConfigError(f"--fps must be > 0, got {args.fps}")
    if args.max_frames < 0:
        raise ConfigError(f"--max-frames must be >= 0, got {args.max_frames}")
    if args.start < 0:
        raise ConfigError(f"--start must be >= 0 seconds, got {args.start}")
    if args.out.exists():
        raise ConfigError(f"output bag {args.out} exists already; choose another --out or delete it")
    if not args.source.exists():
        raise ConfigError(f"{args.source} does not exist: give a video file or a folder of images")


def run(args: argparse.Namespace) -> int:
    from fer_ros.annotate.sources import DEFAULT_VIDEO_FPS, ImageFolderSource, VideoFrameSource
    from fer_ros.bag.make_bag import ImageBagWriter
    from fer_ros.progress import Progress

    _check(args)
    source = (ImageFolderSource(args.source, args.fps or DEFAULT_VIDEO_FPS) if args.source.is_dir()
              else VideoFrameSource(args.source))
    fps = args.fps or source.fps
    compressed = None if args.raw else ("png" if args.png else "jpeg")
    topic = args.topic or (RAW_TOPIC if args.raw else COMPRESSED_TOPIC)
    count = len(source) if not args.max_frames else min(len(source), args.max_frames)
    written, skipped, size = 0, [], None
    try:
        with source, ImageBagWriter(args.out, topic, version=args.format_version, storage=args.storage,
                                    compressed=compressed, frame_id=args.frame_id,
                                    jpeg_quality=args.jpeg_quality) as bag, \
                Progress("make-bag", count, enabled=not args.no_progress) as progress:
            for index in range(count):
                frame = source.read(index)
                progress.update()
                if frame.image is None:
                    skipped.append(f"{index} ({frame.error})")
                    continue
                stamp_ns = round((args.start + index / fps) * 1e9)
                bag.add_frame(frame.image, stamp_ns, encoding="bgr8")
                size = size or frame.image.shape[1::-1]
                written += 1
        if not written:
            raise ConfigError(f"no frame of {args.source} could be decoded ({len(skipped)} tried): "
                              f"{'; '.join(skipped[:3])}")
    except BaseException:  # a failure or Ctrl-C leaves no half-written bag that would block the rerun
        shutil.rmtree(args.out, ignore_errors=True)
        raise
    for problem in source.problems:
        print(f"source: {problem}")
    if skipped:
        print(f"skipped {len(skipped)} frames that could not be decoded: {', '.join(skipped[:10])}")
    kind = "sensor_msgs/msg/Image bgr8" if args.raw else (
        "sensor_msgs/msg/CompressedImage " + ("PNG" if args.png else f"JPEG quality {args.jpeg_quality}"))
    megabytes = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file()) / 1e6
    print(f"wrote {written} frames ({size[0]}x{size[1]}, {fps:g} fps) to {args.out}: {topic}, {kind}, "
          f"{megabytes:.1f} MB")
    print(f"score it with: fer-ros eval-bag {args.out} --topic {topic} --out {args.out}_report")
    return 0
