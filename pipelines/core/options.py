"""Options declared once: a dataclass field carries its help, choices and bounds.

A stage's options class (``TrainConfig``, ``PredictOptions``) declares each option as one
:func:`option` field. From that one line come the command-line flag (:func:`add_flags`: name,
type, default, choices, help), the generic checks of a value (:func:`check_fields`: type,
choices, bounds, a field's own check) and the defaults a flow or a benchmark reads
(:func:`default_of`). A new option is one line in one place; the parser, the flows and the
docs cannot drift from it.

Flags follow the field name (``steps_per_epoch`` → ``--steps-per-epoch``). Booleans get both
spellings (``--jit`` / ``--no-jit``). An ``int | None`` or ``float | None`` field reads
``none``, ``all`` or ``0`` as None ("no limit", "the whole split"), which is how these options
mean None. Pure standard library: importing it loads neither Beam nor TensorFlow.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

# The words an optional number's flag reads as None, besides 0.
NONE_WORDS = ("none", "all")


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    choices: Sequence[Any] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
    check: Callable[[Any], Any] | None = None,
    group: str | None = None,
    flag: bool = True,
    required_flag: bool = False,
    metavar: str | None = None,
) -> Any:
    """A dataclass field that knows how it is parsed and checked.

    ``minimum``/``maximum`` are inclusive bounds, ``above``/``below`` exclusive ones; ``check``
    is called with the value (not None) and raises ValueError to refuse it (and may return a
    parsed form, ignored here). ``group`` names the ``--help`` section, ``flag=False`` keeps
    the field off the command line, ``required_flag`` makes the flag mandatory even though
    Python callers get the default.
    """
    return dataclasses.field(
        default=default,
        metadata={
            "help": help,
            "choices": None if choices is None else tuple(choices),
            "minimum": minimum,
            "maximum": maximum,
            "above": above,
            "below": below,
            "check": check,
            "group": group,
            "flag": flag,
            "required_flag": required_flag,
            "metavar": metavar,
        },
    )


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(the type, whether None is allowed) of ``int``, ``int | None``, ``Optional[str]``…"""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        allows_none = len(members) < len(typing.get_args(annotation))
        return (members[0] if len(members) == 1 else annotation), allows_none
    return annotation, False


def field_types(cls: type) -> dict[str, tuple[Any, bool]]:
    """Each field's (type, allows None), with postponed annotations resolved."""
    hints = typing.get_type_hints(cls)
    return {f.name: _base_type(hints[f.name]) for f in dataclasses.fields(cls)}


def _optional_number(kind: type) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text.strip().lower() in NONE_WORDS:
            return None
        value = kind(text)
        return None if value == 0 else value

    parse.__name__ = f"{kind.__name__} or none"  # argparse names the type in its errors
    return parse


def _checked(parse: Callable[[str], Any], check: Callable[[Any], Any]) -> Callable[[str], Any]:
    """A flag type that also runs the field's own check, so the parser names the flag."""

    def parse_and_check(text: str) -> Any:
        value = parse(text)
        if value is not None:
            try:
                check(value)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from error
        return value

    parse_and_check.__name__ = getattr(parse, "__name__", "value")  # argparse names it in errors
    return parse_and_check


def add_flags(
    parser: argparse.ArgumentParser,
    cls: type,
    defaults: Any = None,
    *,
    skip: Sequence[str] = (),
    groups: dict[str, str] | None = None,
) -> None:
    """One flag per ``option`` field of ``cls``, with ``defaults``'s values as defaults.

    ``defaults``: an instance whose values are shown and used (e.g. a preset's), or None for
    the class defaults. ``skip``: fields the caller adds itself. ``groups``: a description per
    group name for ``--help``.
    """
    types_of = field_types(cls)
    sections: dict[str | None, Any] = {None: parser}
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if "help" not in meta or not meta["flag"] or field.name in skip:
            continue
        group = meta["group"]
        if group not in sections:
            sections[group] = parser.add_argument_group(
                group, (groups or {}).get(group) if group else None
            )
        target = sections[group]
        kind, allows_none = types_of[field.name]
        if defaults is not None:
            default = getattr(defaults, field.name)
        elif field.default is not dataclasses.MISSING:
            default = field.default
        else:
            default = None
        required = meta["required_flag"] or (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )
        text = meta["help"].replace("%", "%%")  # argparse formats help with %
        kwargs: dict[str, Any] = {"dest": field.name, "help": text}
        if required:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
            kwargs["help"] = f"{text} (default: %(default)s)" if text else "default %(default)s"
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            parse: Callable[[str], Any] = kind
            if allows_none and kind in (int, float):
                parse = _optional_number(kind)
            if meta["check"] is not None:
                parse = _checked(parse, meta["check"])
            kwargs["type"] = parse
            if meta["choices"] is not None:
                kwargs["choices"] = meta["choices"]
            if meta["metavar"] is not None:
                kwargs["metavar"] = meta["metavar"]
        target.add_argument(flag_name(field.name), **kwargs)


def _type_ok(value: Any, kind: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return True


def check_fields(instance: Any) -> None:
    """The generic checks of every ``option`` field; ValueError naming the field and why.

    Type, choices, bounds and the field's own ``check``. Checks that relate two fields stay
    with the class (its ``validate``).
    """
    types_of = field_types(type(instance))
    for field in dataclasses.fields(instance):
        meta = field.metadata
        if "help" not in meta:
            continue
        value = getattr(instance, field.name)
        kind, allows_none = types_of[field.name]
        if value is None:
            if not allows_none:
                raise ValueError(f"{field.name} must be set, got None")
            continue
        if not _type_ok(value, kind):
            raise ValueError(f"{field.name} must be {kind.__name__}, got {value!r}")
        if meta["choices"] is not None and value not in meta["choices"]:
            valid = ", ".join(str(c) for c in meta["choices"])
            raise ValueError(f"unknown {field.name} {value!r}; valid: {valid}")
        if kind in (int, float):
            if isinstance(value, float) and math.isnan(value):
                raise ValueError(f"{field.name} must be a number, got nan")
            if meta["minimum"] is not None and value < meta["minimum"]:
                raise ValueError(f"{field.name} must be >= {meta['minimum']}, got {value}")
            if meta["above"] is not None and not value > meta["above"]:
                raise ValueError(f"{field.name} must be > {meta['above']}, got {value}")
            if meta["maximum"] is not None and value > meta["maximum"]:
                raise ValueError(f"{field.name} must be <= {meta['maximum']}, got {value}")
            if meta["below"] is not None and not value < meta["below"]:
                raise ValueError(f"{field.name} must be < {meta['below']}, got {value}")
        if meta["check"] is not None:
            meta["check"](value)


def default_of(cls: type, name: str) -> Any:
    """The default of one field, for callers that must not restate it."""
    for field in dataclasses.fields(cls):
        if field.name == name and field.default is not dataclasses.MISSING:
            return field.default
    raise KeyError(f"{name!r} is not a {cls.__name__} field with a default")


def help_of(cls: type, name: str) -> str:
    """The help text of one field (for flows and docs that describe the same option)."""
    for field in dataclasses.fields(cls):
        if field.name == name and "help" in field.metadata:
            return str(field.metadata["help"])
    raise KeyError(f"{name!r} is not an option of {cls.__name__}")


def parse_assignments(pairs: Sequence[str], *, flag: str = "--train") -> dict[str, Any]:
    """``KEY=VALUE`` pairs → field overrides; a value is JSON when it parses as JSON
    (``epochs=3``, ``jit=true``, ``crop_size=null``), else text (``loss=dice+ce``). The fields
    are checked where the overrides are applied (the dataclass's own validation)."""
    import json

    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} {pair!r}: expected KEY=VALUE (a field name)")
        try:
            overrides[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            overrides[key.strip()] = text
    return overrides
