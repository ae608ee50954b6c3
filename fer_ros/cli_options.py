"""Command-line conventions shared by every ``fer-ros`` subcommand (argparse only; no ROS, no torch).

- ``FerArgumentParser``: a wrong command line is one line, ``fer-ros <command>: error: <what>``, exit 2.
- ``HelpFormatter``: every option's help ends with its default (unless it already says it or has none).
- ``add_deprecated``: an old flag spelling keeps working, with a warning naming the new one.
- ``add_progress`` / ``add_verbose``: the same flag, help and meaning in every command that has them.

Flag names mean one thing across commands (see docs/cli.md): ``--out`` is the exact output folder, ``--labels`` a
label CSV, ``--classes`` class names, ``--data`` a data set folder, ``--model`` a model id or path; the main input
(bag, video, checkpoint, config, images) is positional.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn


class FerArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line pointing at ``--help`` (argparse prints the usage too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        namespace, extras = super().parse_known_args(args, namespace)
        # An optional positional (nargs="?") is assigned its default after the options were read, which would wipe
        # what a deprecated spelling of it stored: put those values back where the new form left nothing.
        for dest, value in vars(namespace).pop(_DEPRECATED_VALUES, {}).items():
            if getattr(namespace, dest, None) in (None, [], ()):
                setattr(namespace, dest, value)
        return namespace, extras


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Appends ``(default: X)`` to an option's help when it has a default worth saying and the help does not."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (not action.option_strings or "default" in text or default in (None, False, [], "")
                or default is argparse.SUPPRESS or isinstance(action, argparse._VersionAction)):
            return text
        return f"{text} (default: %(default)s)"


_DEPRECATED_VALUES = "_deprecated_values"  # namespace attribute: what the deprecated spellings stored, by dest


class _DeprecatedAlias(argparse.Action):
    """Stores like the option it replaces (into that option's ``dest``) and warns on stderr."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str = "", convert: Any = None,
                 append: bool = False, **kwargs: Any) -> None:
        self.replacement, self.convert, self.append = replacement, convert, append
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated, use {self.replacement}", file=sys.stderr)
        value = self.convert(values) if self.convert else values
        if self.append:  # a repeatable flag whose new form is a positional list: gather into that list
            value = [*(getattr(namespace, self.dest, None) or []), value]
        setattr(namespace, self.dest, value)
        vars(namespace).setdefault(_DEPRECATED_VALUES, {})[self.dest] = value


def add_deprecated(parser: argparse.ArgumentParser, old: str, replacement: str, dest: str, convert: Any = None,
                   append: bool = False, **kwargs: Any) -> None:
    """Accept ``old`` as a deprecated spelling of ``replacement``: it sets ``dest`` (through ``convert``, for an old
    value format; ``append`` for a repeatable one) and prints a warning."""
    parser.add_argument(old, dest=dest, action=_DeprecatedAlias, replacement=replacement, convert=convert,
                        append=append, default=argparse.SUPPRESS, help=f"deprecated spelling of {replacement}",
                        **kwargs)


def output_taken(path: Path) -> bool:
    """True when ``path`` cannot be used as a new output folder as it is: a file, or a folder that is not empty (the
    commands refuse to write into such a path rather than mix or overwrite what it holds)."""
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def comma_list(text: str) -> tuple[str, ...]:
    """``"happy, sad,neutral"`` -> ``("happy", "sad", "neutral")`` (the format of ``--classes``)."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def add_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``; bars are also off whenever stderr is not a terminal (``fer_ros.progress``)."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (they are off anyway when stderr is not a terminal, e.g. a log file)")


def add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true", help="DEBUG log messages as well as INFO")
