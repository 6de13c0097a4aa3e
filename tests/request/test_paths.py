"""paths: the final file name of an object and the driver's File.path contract."""

from __future__ import annotations

import pytest

from provider_aws.request.paths import (
    MAX_ELEMENT_BYTES,
    MAX_PATH_BYTES,
    PathError,
    file_name,
    find_conflicts,
    parse_translation,
    path_problem,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "_"),
        ("-", "-"),
        (".", "."),
        ("False", None),
        ("false", None),
        ("FALSE", None),
        ("fAlSe", None),
    ],
)
def test_parse_translation_accepts(value: str, expected: str | None) -> None:
    assert parse_translation(value) == expected


@pytest.mark.parametrize("value", ["__", "no", "é", "true", "  "])
def test_parse_translation_refuses_more_than_one_byte(value: str) -> None:
    with pytest.raises(
        PathError, match="pathTranslation must be either 'False' or a single character string"
    ):
        parse_translation(value)


@pytest.mark.parametrize(
    ("name", "translation", "expected"),
    [
        ("MySecret", "_", "MySecret"),
        ("db/creds", "_", "db_creds"),
        ("/app/prod/db", "_", "_app_prod_db"),
        ("db/creds", "-", "db-creds"),
        ("db/creds", None, "db/creds"),
        ("/app/prod/db", None, "app/prod/db"),
        ("///deep", None, "deep"),
        (
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCd",
            "_",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app_db-AbCd",
        ),
        ("a..b", None, "a..b"),
        ("x/..y", None, "x/..y"),
        ("ü/名前", None, "ü/名前"),
    ],
)
def test_file_name(name: str, translation: str | None, expected: str) -> None:
    assert file_name(name, translation) == expected
    assert path_problem(expected) is None


@pytest.mark.parametrize(
    ("name", "translation", "reason"),
    [
        ("", "_", "empty"),
        ("/", None, "empty"),
        ("..", "_", "'..' element"),
        ("..", None, "'..' element"),
        ("../x", None, "'..' element"),
        ("a/../b", None, "'..' element"),
        ("a/..", None, "'..' element"),
        ("..data", "_", "starts with '..'"),
        ("../etc/passwd", "_", "starts with '..'"),
        ("...", "_", "starts with '..'"),
        ("..x/y", None, "starts with '..'"),
        ("/abs", "/", "absolute"),
        ("a//b", None, "empty or '.'"),
        ("a/./b", None, "empty or '.'"),
        (".", "_", "empty or '.'"),
        ("a/", None, "empty or '.'"),
        ("nul\x00byte", "_", "control character"),
        ("new\nline", "_", "control character"),
        ("del\x7f", "_", "control character"),
        ("x", "\x00", None),  # a NUL translation character is fine until a slash meets it
        ("a/b", "\x00", "control character"),
        ("lone\ud800surrogate", "_", "not valid UTF-8"),
        ("e" * (MAX_ELEMENT_BYTES + 1), "_", "longer than"),
        ("/".join(["d" * 200] * 21), None, "longer than"),
    ],
)
def test_file_name_refuses_what_the_driver_refuses(
    name: str, translation: str | None, reason: str | None
) -> None:
    if reason is None:
        assert file_name(name, translation) == name
        return
    with pytest.raises(PathError, match=reason):
        file_name(name, translation)


def test_limits_are_the_atomic_writer_limits() -> None:
    assert MAX_PATH_BYTES == 4096
    assert MAX_ELEMENT_BYTES == 255
    assert path_problem("e" * MAX_ELEMENT_BYTES) is None
    # multi-byte characters count as bytes
    assert path_problem("é" * 128) is not None


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["a", "b", "c"], []),
        (["a", "b", "a"], [(0, 2, "used twice")]),
        (["a/b", "a/c", "a/d/e"], []),
        (["a", "a/b"], [(0, 1, "needs 'a' as a directory")]),
        (["a/b/c", "a"], [(0, 1, "also a directory")]),
        (["a/b/c", "a/b"], [(0, 1, "also a directory")]),
        (["x", "x", "x"], [(0, 1, "used twice"), (0, 2, "used twice")]),
        (["a_b", "a/b"], []),
    ],
)
def test_find_conflicts(names: list[str], expected: list[tuple[int, int, str]]) -> None:
    found = find_conflicts(names)
    assert [(c.first, c.second) for c in found] == [(first, second) for first, second, _ in expected]
    for conflict, (_, _, words) in zip(found, expected, strict=True):
        assert words in conflict.reason
