"""Names from outside (drop prefixes, ids, output names) never escape their root."""

from __future__ import annotations

import re
import unicodedata

import pytest

from pipelines.core.uris import (
    case_collisions,
    case_key,
    confine,
    normalize_name,
    same_or_inside,
)


@pytest.mark.parametrize(
    "name",
    [
        "123_sat.jpg",
        "drops/2024-01-02/123_mask.png",
        "a b.png",
        "...",
        "ünï/çødé",
        "12:30_sat.jpg",
        "tile[1]_sat.jpg",  # glob characters are literal in storage: plain names
        "a*b?.png",
    ],
)
def test_plain_names_pass_through(name: str) -> None:
    assert normalize_name(name) == unicodedata.normalize("NFC", name)


def test_normalize_name_returns_nfc() -> None:
    decomposed = "e\u0301.png"  # é as e + combining acute
    assert normalize_name(decomposed) == "\u00e9.png"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        ("..", "'..'"),
        ("a/../b", "'..'"),
        ("./a", "'.'"),
        ("a/.", "'.'"),
        ("/etc/passwd", "absolute"),
        ("gs://other-bucket/x", "scheme"),
        ("file:x", "scheme"),
        ("C:evil", "drive"),
        ("a\\..\\b", "backslash"),
        ("a//b", "'//'"),
        ("a/", "trailing"),
        ("a\x00b", "U+0000"),
        ("a\nb", "U+000A"),
        ("a\u202eb", "U+202E"),  # right-to-left override
        ("a\u200bb", "U+200B"),  # zero-width space
        ("\uff0e\uff0e\uff0fx", "path trick"),  # fullwidth ../
        ("a\uff3cb", "path trick"),  # fullwidth backslash
        ("x" * 1025, "1024 bytes"),
    ],
)
def test_unsafe_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(ValueError, match=rf"unsafe object name .*{re.escape(reason)}"):
        normalize_name(name)


def test_non_string_is_refused() -> None:
    with pytest.raises(ValueError, match="string"):
        normalize_name(b"x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("root", "name", "expected"),
    [
        ("gs://b/drops", "123/1_sat.jpg", "gs://b/drops/123/1_sat.jpg"),
        ("gs://b/drops/", "1_sat.jpg", "gs://b/drops/1_sat.jpg"),
        ("/data/raw", "1_sat.jpg", "/data/raw/1_sat.jpg"),
        ("/", "x", "/x"),
        ("rel", "x", "rel/x"),
    ],
)
def test_confine_joins_under_root(root: str, name: str, expected: str) -> None:
    assert confine(root, name) == expected
    assert same_or_inside(confine(root, name), root)


@pytest.mark.parametrize("name", ["../raw/1_sat.jpg", "gs://b/raw", "/data/raw", "a//b", ""])
def test_confine_refuses_escapes(name: str) -> None:
    with pytest.raises(ValueError):
        confine("gs://b/drops", name)


def test_confine_refuses_empty_root() -> None:
    with pytest.raises(ValueError, match="empty root"):
        confine("", "x")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("gs://b/in", "gs://b/in"),
        ("gs://b/in/", "gs://b/in"),
        ("gs://b/in/out", "gs://b/in/"),
        ("gs://b//in///out", "gs://b/in"),
        ("gs://b/in/./out", "gs://b/in"),
        ("GS://B/in/out", "gs://b/in"),
        ("gs://b/x/../in/out", "gs://b/in"),  # lexical reading
        ("gs://b/in/../out", "gs://b/in"),  # literal reading: an object store keeps '..'
        ("/data/in/out", "/data/in"),
        ("/data/./in//out/", "/data/in/"),
        ("/data/x/../in", "/data/in"),
        ("file:///data/in/out", "/data/in"),
        ("data/in/out", "./data/in"),
        ("/data/in/e\u0301", "/data/in/\u00e9"),
        ("/", "/"),
        ("gs://b/anything", "gs://b"),
    ],
)
def test_same_or_inside_true_however_spelled(a: str, b: str) -> None:
    assert same_or_inside(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("gs://b/input", "gs://b/in"),  # a prefix of the name is not a folder
        ("gs://b/in", "gs://b/in/out"),
        ("gs://other/in", "gs://b/in"),
        ("s3://b/in", "gs://b/in"),
        ("/data/in/../out", "/data/in"),  # local paths resolve '..'
        ("/data/In", "/data/in"),  # paths are case-sensitive by default
        ("data/in", "/data/in"),  # relative vs absolute: never guessed
        ("/data", "gs://data"),
    ],
)
def test_same_or_inside_false(a: str, b: str) -> None:
    assert not same_or_inside(a, b)


def test_same_or_inside_fold_case_for_case_insensitive_filesystems() -> None:
    assert same_or_inside("/Data/IN/out", "/data/in", fold_case=True)


def test_case_key_collides_on_case_and_unicode_form() -> None:
    assert case_key("ABC") == case_key("abc")
    assert case_key("Stra\u00dfe") == case_key("STRASSE")
    assert case_key("e\u0301") == case_key("\u00e9")
    assert case_key("\uff11\uff12\uff13") == case_key("123")  # fullwidth digits
    assert case_key("123") != case_key("124")


def test_case_collisions_groups_only_distinct_colliding_names() -> None:
    names = ["a1", "A1", "b", "b", "\u00e9", "e\u0301", "c"]
    assert case_collisions(names) == [("A1", "a1"), ("e\u0301", "\u00e9")]
