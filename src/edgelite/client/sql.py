"""The little the client needs to know about a statement, from its first keyword.

``sqlite3`` decides two things from the leading keyword (CPython ``_sqlite/statement.c``):
whether a statement is DML (``INSERT``, ``UPDATE``, ``DELETE``, ``REPLACE``), which
gets an implicit ``BEGIN`` in legacy transaction control and a ``rowcount``; and nothing
else. The client also needs to know which statements control transactions, so that it
keeps a Hrana stream open while one may be active and closes it when one ends. This is
deliberately the same shallow look ``sqlite3`` takes: SQLite (on the server) remains the
judge of what a statement really does, and the client asks it (``get_autocommit``)
whenever a statement may have started or ended a transaction.
"""

from __future__ import annotations

import enum
import functools
import re
from typing import Final

__all__ = [
    "Lead",
    "classify",
    "is_blank",
    "is_read_only",
    "leading_keyword",
    "script_may_open_transaction",
]


class Lead(enum.Enum):
    """What the leading keyword says about a statement."""

    DML = "dml"  # INSERT / UPDATE / DELETE / REPLACE
    BEGIN = "begin"
    COMMIT = "commit"  # COMMIT or END
    ROLLBACK = "rollback"  # ROLLBACK, but not ROLLBACK TO
    SAVEPOINT = "savepoint"
    RELEASE = "release"
    OTHER = "other"  # SELECT, DDL, PRAGMA, WITH ..., ROLLBACK TO ...


_LEADING_WORDS: Final = re.compile(
    r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*([A-Za-z]+)(?:\s+(?:TRANSACTION\s+)?([A-Za-z]+))?",
    re.DOTALL,
)
_ONLY_COMMENTS: Final = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$)|;)*", re.DOTALL)
_READ_ONLY_LEADS: Final = frozenset({"SELECT", "VALUES", "PRAGMA", "EXPLAIN"})
_WRITE_WORD: Final = re.compile(r"\b(?:INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_OPENS_TRANSACTION: Final = re.compile(r"\b(?:BEGIN|SAVEPOINT)\b", re.IGNORECASE)

_BY_KEYWORD: Final = {
    "INSERT": Lead.DML,
    "UPDATE": Lead.DML,
    "DELETE": Lead.DML,
    "REPLACE": Lead.DML,
    "BEGIN": Lead.BEGIN,
    "COMMIT": Lead.COMMIT,
    "END": Lead.COMMIT,
    "ROLLBACK": Lead.ROLLBACK,
    "SAVEPOINT": Lead.SAVEPOINT,
    "RELEASE": Lead.RELEASE,
}


@functools.lru_cache(maxsize=512)
def leading_keyword(sql: str) -> str:
    """The first keyword of ``sql`` in upper case (``""`` when there is none)."""
    match = _LEADING_WORDS.match(sql)
    return "" if match is None else match.group(1).upper()


@functools.lru_cache(maxsize=512)
def classify(sql: str) -> Lead:
    """The role of the first statement in ``sql``, from its leading keyword."""
    match = _LEADING_WORDS.match(sql)
    if match is None:
        return Lead.OTHER
    lead = _BY_KEYWORD.get(match.group(1).upper(), Lead.OTHER)
    if lead is Lead.ROLLBACK and (match.group(2) or "").upper() == "TO":
        return Lead.OTHER  # ROLLBACK [TRANSACTION] TO savepoint keeps the transaction
    return lead


def is_blank(sql: str) -> bool:
    """True when ``sql`` holds no statement (whitespace, comments and ``;`` only)."""
    return _ONLY_COMMENTS.fullmatch(sql) is not None


def script_may_open_transaction(script: str) -> bool:
    """Whether a script could leave a transaction open (it mentions BEGIN or SAVEPOINT).

    False positives (a trigger body's ``BEGIN``) only cost a ``get_autocommit`` probe.
    """
    return _OPENS_TRANSACTION.search(script) is not None


def is_read_only(sql: str) -> bool:
    """True for statements that only read (``executemany`` refuses them, as sqlite3 does).

    ``WITH`` counts as a read unless the text mentions a write keyword after it.
    """
    match = _LEADING_WORDS.match(sql)
    if match is None:
        return False
    word = match.group(1).upper()
    if word == "WITH":
        return _WRITE_WORD.search(sql) is None
    return word in _READ_ONLY_LEADS
