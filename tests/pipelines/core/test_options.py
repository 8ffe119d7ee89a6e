"""Options declared once: flags, checks and defaults derived from a dataclass's fields."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from pipelines.core.options import add_flags, check_fields, default_of, help_of, option


def _positive_even(value: int) -> int:
    if value % 2:
        raise ValueError(f"size must be even, got {value}")
    return value


@dataclass
class Example:
    name: str = option(help="what to call it")
    size: int = option(4, help="side in px", minimum=1, check=_positive_even)
    limit: int | None = option(None, help="none: no limit", minimum=1)
    ratio: float = option(0.5, help="a share", minimum=0, below=1, group="tuning")
    rate: float = option(1e-3, help="must be positive", above=0, group="tuning")
    mode: str = option("fast", help="how", choices=("fast", "exact"))
    verbose: bool = option(False, help="say more")
    hidden: int = option(7, help="not a flag", flag=False)
    plain: int = 3  # no option(): neither a flag nor checked


def _parse(argv: list[str], defaults: Example | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    add_flags(parser, Example, defaults, groups={"tuning": "the knobs"})
    return vars(parser.parse_args(argv))


def test_flags_follow_the_fields_names_types_and_defaults() -> None:
    args = _parse(["--name", "a", "--size", "8", "--limit", "3", "--ratio", "0.25", "--verbose"])
    assert args == {
        "name": "a",
        "size": 8,
        "limit": 3,
        "ratio": 0.25,
        "rate": 1e-3,
        "mode": "fast",
        "verbose": True,
    }
    assert Example(**args).size == 8  # type: ignore[arg-type]
    for none in ("none", "all", "0"):
        assert _parse(["--name", "a", "--limit", none])["limit"] is None
    assert _parse(["--name", "a", "--no-verbose"])["verbose"] is False


def test_a_field_without_a_default_is_a_required_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse([])
    assert "the following arguments are required: --name" in capsys.readouterr().err


def test_bad_values_are_refused_by_the_parser_naming_the_cause(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        _parse(["--name", "a", "--size", "3"])
    assert "size must be even, got 3" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["--name", "a", "--mode", "slow"])
    assert "invalid choice: 'slow'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parse(["--name", "a", "--size", "x"])
    assert "invalid int value: 'x'" in capsys.readouterr().err


def test_an_instance_s_values_become_the_defaults() -> None:
    args = _parse(["--name", "b"], Example(name="", size=16, mode="exact"))
    assert (args["size"], args["mode"]) == (16, "exact")


def test_help_shows_groups_and_defaults_and_hides_what_is_not_a_flag() -> None:
    parser = argparse.ArgumentParser()
    add_flags(parser, Example, groups={"tuning": "the knobs"})
    text = parser.format_help()
    assert "tuning:\n  the knobs" in text
    assert "side in px (default: 4)" in text
    assert "--hidden" not in text and "--plain" not in text


def test_check_fields_names_the_field_and_the_rule() -> None:
    check_fields(Example(name="a"))
    cases = [
        (Example(name="a", size=0), "size must be >= 1, got 0"),
        (Example(name="a", size=6, limit=0), "limit must be >= 1, got 0"),
        (Example(name="a", ratio=1.0), "ratio must be < 1, got 1.0"),
        (Example(name="a", rate=0.0), "rate must be > 0, got 0.0"),
        (Example(name="a", mode="slow"), "unknown mode 'slow'; valid: fast, exact"),
        (Example(name="a", size=5), "size must be even, got 5"),
        (Example(name="a", size=True), "size must be int, got True"),
        (Example(name="a", ratio=float("nan")), "ratio must be a number, got nan"),
        (Example(name=None), "name must be set, got None"),  # type: ignore[arg-type]
    ]
    for instance, message in cases:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            check_fields(instance)
    check_fields(Example(name="a", ratio=0))  # an int where a float is declared is fine


def test_defaults_and_help_are_read_from_the_one_declaration() -> None:
    assert default_of(Example, "size") == 4
    assert help_of(Example, "limit") == "none: no limit"
    with pytest.raises(KeyError):
        default_of(Example, "name")
    with pytest.raises(KeyError):
        help_of(Example, "plain")
