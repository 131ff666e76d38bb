"""Shared command-line pieces: argparse types that validate numbers where they enter (with a message
that says what is expected), and the help layout of every command."""
from __future__ import annotations

import argparse
import sys


def _number(convert, kind: str, ok, allowed: str):
    """An argparse type: ``convert`` the text, then check it with ``ok``; both errors say what is expected."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text}")
        return value

    return parse


positive_int = _number(int, "a whole number", lambda v: v >= 1, "a whole number >= 1")
non_negative_int = _number(int, "a whole number", lambda v: v >= 0, "a whole number >= 0")
positive_float = _number(float, "a number", lambda v: 0 < v < float("inf"), "a finite number > 0")
fraction = _number(float, "a number", lambda v: 0 <= v < 1, "a fraction in [0, 1)")  # e.g. a held-out share


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the examples' layout; show a default only where there is one and the help does not state it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS \
                or "default" in text or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


class ArgumentParser(argparse.ArgumentParser):
    """A usage error is one line that names the command and where to look, not the whole usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            sys.stderr.write(message)
        sys.exit(status)
