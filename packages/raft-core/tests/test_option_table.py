"""The option table: unknown keys are refused with a hint, and docs/options.md is made from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from zmqraft.core.config import (
    DEFAULTS,
    OPTIONS,
    OptionsError,
    create_options,
    unknown_options,
    validate_options,
)
from zmqraft.core.option_reference import render

DOCS = Path(__file__).resolve().parents[3] / "docs" / "options.md"


def test_every_option_has_a_one_line_description() -> None:
    keys = [option.key for option in OPTIONS]
    assert len(keys) == len(set(keys))
    for option in OPTIONS:
        assert option.description and "\n" not in option.description, option.key
        parent = option.key.rpartition(".")[0]
        assert not parent or parent in keys, f"{option.key}: no row for its namespace {parent}"


def test_every_default_is_in_the_table() -> None:
    def leaves(mapping: dict[str, Any], prefix: str = "") -> list[str]:
        out = []
        for key, value in mapping.items():
            out.append(prefix + key)
            if isinstance(value, dict):
                out += leaves(value, f"{prefix}{key}.")
        return out

    known = {option.key for option in OPTIONS}
    open_ns = tuple(f"{option.key}." for option in OPTIONS if option.open)
    assert [k for k in leaves(DEFAULTS) if k not in known and not k.startswith(open_ns)] == []


@pytest.mark.parametrize(
    ("user", "found"),
    [
        ({"webmonitr": {}}, ["webmonitr (did you mean webmonitor?)"]),
        ({"electionTimeoutMn": 300}, ["electionTimeoutMn (did you mean electionTimeoutMin?)"]),
        ({"peer": []}, ["peer (did you mean peers?)"]),
        ({"data": {"compact": {"wach": True}}}, ["data.compact.wach (did you mean watch?)"]),
        ({"peers": [{"id": "1", "urll": "tcp://a:1"}]}, ["peers[0].urll (did you mean url?)"]),
        ({"zzz": 1}, ["zzz"]),
        ({"console": {"client": {"mine": 1}}, "data": {"compact": {"state": {"options": {"x": 1}}}}}, []),
    ],
)
def test_unknown_keys_and_hints(user: dict[str, Any], found: list[str]) -> None:
    assert unknown_options(user) == found


def test_validation_refuses_unknown_keys_unless_allowed() -> None:
    hint = r"unknown option peer \(did you mean peers\?\); allowUnknownOptions"
    with pytest.raises(OptionsError, match=hint):
        validate_options(create_options({"id": "local", "peer": []}))
    validate_options(create_options({"id": "local", "mine": 1, "allowUnknownOptions": True}))


def test_docs_options_md_is_generated_from_the_table() -> None:
    if not DOCS.parent.is_dir():
        pytest.skip("not in a checkout")
    assert DOCS.read_text() == render(), (
        "docs/options.md is stale: python -m zmqraft.core.option_reference > docs/options.md"
    )
