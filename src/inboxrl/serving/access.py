"""Who may call the server, and which inboxes each caller may read.

Tokens are compared in constant time. A tokens file maps each token to the inboxes it may ask about ("*": all);
`--token` alone grants every inbox. With no token configured the server is open, which `inboxrl serve` allows only
on a loopback address.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

ALL = "*"


class AccessFileError(ValueError):
    """A tokens file that cannot be read or has the wrong shape: one line for the CLI."""


@dataclass
class Access:
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)  # token -> inboxes (lower-cased) or {ALL}

    @property
    def required(self) -> bool:
        return bool(self.tokens)

    def check(self, authorization: str | None) -> frozenset[str] | None:
        """The inboxes the caller may read, or None when the header carries no valid token."""
        if not self.required:
            return frozenset({ALL})
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        given = token.strip().encode()
        found = None
        for known, inboxes in self.tokens.items():  # every token compared: timing says nothing about which matched
            if hmac.compare_digest(known.encode(), given):
                found = inboxes
        return found

    @staticmethod
    def allows(inboxes: frozenset[str], inbox: str) -> bool:
        return ALL in inboxes or inbox.strip().lower() in inboxes


def load_access(token: str | None, tokens_file: Path | None) -> Access:
    tokens: dict[str, frozenset[str]] = {}
    if token:
        tokens[token] = frozenset({ALL})
    if tokens_file is not None:
        import yaml

        try:
            data = yaml.safe_load(tokens_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise AccessFileError(f"{tokens_file}: cannot read the tokens file ({str(e).splitlines()[0]})") from e
        if not isinstance(data, dict) or not data:
            raise AccessFileError(f"{tokens_file}: expected a mapping of token -> list of inboxes (or \"*\")")
        for tok, inboxes in data.items():
            if not isinstance(tok, str) or len(tok.strip()) < 8:
                raise AccessFileError(f"{tokens_file}: a token must be a string of at least 8 characters")
            if isinstance(inboxes, str):
                inboxes = [inboxes]
            if not isinstance(inboxes, list) or not all(isinstance(i, str) for i in inboxes):
                raise AccessFileError(f"{tokens_file}: the inboxes of a token must be a list of addresses")
            tokens[tok.strip()] = frozenset(i.strip().lower() for i in inboxes)
    return Access(tokens)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
