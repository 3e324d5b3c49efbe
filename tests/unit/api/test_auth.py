"""Operators' tokens: plain or hashed, unique names, clear errors; ``--listen`` parsing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gulou.api.auth import Operator, Operators, TokenFileError
from gulou.api.server import ServeError, parse_listen


def test_plain_and_hashed_tokens_name_their_operator(tmp_path: Path) -> None:
    path = tmp_path / "ops.yaml"
    digest = hashlib.sha256(b"lisi-token-0123456789").hexdigest()
    path.write_text("operators:\n- {name: 张三, token: zhangsan-token-0123}\n"
                    f"- {{name: 李四, token_sha256: {digest}}}\n", encoding="utf-8")
    ops = Operators.load(path)
    assert ops.who("zhangsan-token-0123") == "张三"
    assert ops.who("lisi-token-0123456789") == "李四"
    assert ops.who("zhangsan-token-012") is None and ops.who("") is None


@pytest.mark.parametrize(("text", "problem"), [
    ("operators: [{name: a, token: short}]", "at least 16"),
    ("operators: [{name: a}]", "exactly one of token, token_sha256"),
    ("operators: [{name: a, token: aaaaaaaaaaaaaaaa, role: admin}]", "Extra inputs"),
    ("operators: [", "ops.yaml"),
])
def test_bad_token_files_are_refused_with_the_reason(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "ops.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TokenFileError, match=problem):
        Operators.load(path)


def test_operator_names_are_unique() -> None:
    with pytest.raises(TokenFileError, match="unique"):
        Operators([Operator(name="a", token="x" * 16), Operator(name="a", token="y" * 16)])


def test_listen_address() -> None:
    assert parse_listen("0.0.0.0:8088") == ("0.0.0.0", 8088)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen(":8088") == ("127.0.0.1", 8088)
    for bad in ("8088", "host:", "host:99999", "host:http"):
        with pytest.raises(ServeError, match="HOST:PORT"):
            parse_listen(bad)
