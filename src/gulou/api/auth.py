"""Operators' bearer tokens, read from a file named in the settings (never from the repository)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import stat
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

log = logging.getLogger(__name__)


class TokenFileError(ValueError):
    """A tokens file that cannot be used."""


class Operator(BaseModel):
    """One operator: a name recorded with every write, and the token (or its SHA-256) that proves it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    token: str | None = Field(default=None, min_length=16)
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_token(self) -> Operator:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError(f"operator {self.name!r}: give exactly one of token, token_sha256")
        return self

    def digest(self) -> str:
        """SHA-256 hex of the token."""
        return self.token_sha256 or hashlib.sha256((self.token or "").encode()).hexdigest()


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operators: list[Operator]


class Operators:
    """Looks up the operator a bearer token belongs to (constant-time comparison of digests)."""

    def __init__(self, operators: list[Operator]) -> None:
        names = [o.name for o in operators]
        if len(set(names)) != len(names):
            raise TokenFileError("operator names must be unique")
        self._digests = [(o.digest(), o.name) for o in operators]

    @classmethod
    def load(cls, path: Path) -> Operators:
        """Read ``operators: [{name, token | token_sha256}]`` from a YAML file."""
        try:
            mode = path.stat().st_mode
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            parsed = _File.model_validate(data)
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise TokenFileError(f"{path}: {exc}") from None
        if mode & (stat.S_IRGRP | stat.S_IROTH):
            log.warning("%s is readable by other users; chmod 600 it", path)
        return cls(parsed.operators)

    def who(self, token: str) -> str | None:
        """The operator's name for a token, or None."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        found = None
        for known, name in self._digests:
            if hmac.compare_digest(known, digest):
                found = name
        return found
