"""Reading YAML quickly: libyaml's C parser when PyYAML has it (its wheels do), else PyYAML's own.

The C parser reads rule files about ten times faster, which is most of what validation
and lint spend on a large price table. It builds the same data; only its error messages
are terser, so a document it refuses is parsed again by PyYAML's parser, whose message
(or, should the two disagree, whose result) is the one returned.

Only reading: files are written with PyYAML's Python emitter everywhere, so that the
build's output does not depend on whether libyaml is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=FAST_LOADER)
    except yaml.YAMLError:
        return yaml.load(text, Loader=yaml.SafeLoader)


def load_all(text: str) -> list[Any]:
    try:
        return list(yaml.load_all(text, Loader=FAST_LOADER))
    except yaml.YAMLError:
        return list(yaml.load_all(text, Loader=yaml.SafeLoader))


def compose(text: str) -> Iterator[yaml.Node] | yaml.Node | None:
    """The node tree (with line marks) of a single-document stream."""
    try:
        return yaml.compose(text, Loader=FAST_LOADER)
    except yaml.YAMLError:
        return yaml.compose(text, Loader=yaml.SafeLoader)
