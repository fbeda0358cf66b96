"""Who the caller is and what it may do: ``Identity``, built from verified JWT claims.

Claim rules (sqld's, protocol.md §6.3, with the choices recorded in docs/design/auth.md):

* With ``p`` (fine-grained): only ``p`` grants anything; ``a`` and ``id`` are ignored
  (current sqld does the same). Scopes ``rw`` and ``rwa`` grant write (and read),
  ``ro`` and ``roa`` read, ``ddl`` read; ``roa``/``rwa`` also allow ATTACH of the
  listed namespaces. Each scope lists namespaces in ``ns``. ``tags`` (sqld matches
  them against the server's group id) grant nothing here: edgelite has no group id yet.
  Unknown scope names grant nothing. An empty ``p`` grants nothing.
* Without ``p``: access ``a`` (``rw``, ``ro``, ``roa``; absent means ``rw``, as in
  sqld) to namespace ``id``, or to every namespace when ``id`` is absent.
* A claim that is present but malformed (wrong type, unknown ``a``, empty namespace
  name) makes the whole token invalid (``AUTH_JWT_INVALID``): never guess.
* JSON ``null`` counts as absent, as with sqld's optional fields.
"""

from __future__ import annotations

import bisect
import dataclasses
import enum
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from edgelite.auth.reasons import AuthReason
from edgelite.errors import NamespaceNotFoundError, PermissionDeniedError, ProtocolError

_T = TypeVar("_T")


class Access(enum.IntEnum):
    """What a caller may do in one namespace; ordered so that ``max`` combines grants."""

    NONE = 0
    READ = 1
    WRITE = 2


class Principal(enum.Enum):
    """How the caller authenticated (for logs and metrics; rights live in the fields)."""

    AUTH_DISABLED = "auth_disabled"
    BASIC = "basic"
    JWT = "jwt"


_ACCESS_BY_CLAIM: Mapping[str, Access] = {"rw": Access.WRITE, "ro": Access.READ, "roa": Access.READ}
_SCOPE_ACCESS: Mapping[str, Access] = {
    "rw": Access.WRITE,
    "rwa": Access.WRITE,
    "ro": Access.READ,
    "roa": Access.READ,
    "ddl": Access.READ,
}
_ATTACH_SCOPES = frozenset({"roa", "rwa"})


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller's rights. Immutable, hashable, serialisable.

    Invariants:
    * ``namespaces`` is sorted by name, names are unique and non-empty, and no entry
      has ``Access.NONE`` or an access not above ``all_namespaces`` (it would add
      nothing);
    * ``attach_namespaces`` is sorted, unique, non-empty names; empty when
      ``attach_all``.
    """

    principal: Principal
    all_namespaces: Access = Access.NONE
    namespaces: tuple[tuple[str, Access], ...] = ()
    attach_all: bool = False
    attach_namespaces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = [name for name, _ in self.namespaces]
        assert names == sorted(set(names)), "namespaces must be sorted and unique"
        assert all(name for name in names), "namespace names are non-empty"
        assert all(access > self.all_namespaces for _, access in self.namespaces), (
            "a per-namespace entry must grant more than all_namespaces"
        )
        attach = list(self.attach_namespaces)
        assert attach == sorted(set(attach)) and all(attach), "attach_namespaces sorted"
        assert not (self.attach_all and attach), "attach_namespaces is empty when attach_all"

    @classmethod
    def build(
        cls,
        principal: Principal,
        *,
        all_namespaces: Access = Access.NONE,
        grants: Iterable[tuple[str, Access]] = (),
        attach_all: bool = False,
        attach_namespaces: Iterable[str] = (),
    ) -> Identity:
        """Normalise grants (strongest wins per name, redundant ones dropped) into an Identity."""
        best: dict[str, Access] = {}
        for name, access in grants:
            best[name] = max(access, best.get(name, Access.NONE))
        namespaces = tuple(
            sorted((name, access) for name, access in best.items() if access > all_namespaces)
        )
        attach = () if attach_all else tuple(sorted(set(attach_namespaces)))
        return cls(principal, all_namespaces, namespaces, attach_all, attach)

    def access_to(self, namespace: str) -> Access:
        """The strongest access this identity has to ``namespace``."""
        index = bisect.bisect_left(self.namespaces, namespace, key=lambda entry: entry[0])
        if index < len(self.namespaces) and self.namespaces[index][0] == namespace:
            return self.namespaces[index][1]
        return self.all_namespaces

    def can_attach(self, namespace: str) -> bool:
        """Whether ``ATTACH`` of ``namespace`` is allowed (``roa``/``rwa``; read is implied)."""
        if self.attach_all:
            return True
        index = bisect.bisect_left(self.attach_namespaces, namespace)
        return index < len(self.attach_namespaces) and self.attach_namespaces[index] == namespace

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-compatible form, e.g. for a follower forwarding to the leader."""
        return {
            "principal": self.principal.value,
            "all": self.all_namespaces.name.lower(),
            "ns": [[name, access.name.lower()] for name, access in self.namespaces],
            "attach_all": self.attach_all,
            "attach": list(self.attach_namespaces),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Identity:
        """Inverse of ``to_dict``; raises ``ProtocolError`` for anything it did not produce."""
        return _identity_from_dict(data)


FULL_ACCESS = Identity(Principal.AUTH_DISABLED, Access.WRITE, attach_all=True)
"""The identity of every request when authentication is disabled."""

BASIC_FULL_ACCESS = Identity(Principal.BASIC, Access.WRITE, attach_all=True)
"""The identity granted by correct HTTP Basic credentials (sqld: full access)."""


def require(identity: Identity, namespace: str, *, needs_write: bool) -> Access:
    """Check ``identity`` may use ``namespace``; return its access.

    No access at all -> ``NamespaceNotFoundError`` (404), worded exactly like a missing
    namespace so a token cannot probe which namespaces exist (sqld does the same).
    Read-only access where write is needed -> ``PermissionDeniedError`` (403).
    """
    access = identity.access_to(namespace)
    if access is Access.NONE:
        raise NamespaceNotFoundError(f"Namespace `{namespace}` doesn't exist")
    if needs_write and access < Access.WRITE:
        raise _forbidden("Write", namespace)
    return access


def require_attach(identity: Identity, namespace: str) -> None:
    """Check ``identity`` may ``ATTACH`` ``namespace`` (needs ``roa``/``rwa`` there)."""
    if not identity.can_attach(namespace):
        raise _forbidden("AttachRead", namespace)


def _forbidden(permission: str, namespace: str) -> PermissionDeniedError:
    # "doesn't not" is sqld's wording, kept verbatim for clients that match on it.
    return PermissionDeniedError(
        "Authorization forbidden: Current session doesn't not have "
        f"{permission} permission to namespace {namespace}"
    )


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """The rights a verified token's claims grant; malformed claims -> ``AUTH_JWT_INVALID``."""
    fine_grained = claims.get("p")
    if fine_grained is not None:
        return _identity_from_scopes(fine_grained)
    access_claim = claims.get("a")
    if access_claim is None:
        access_claim = "rw"
    if not isinstance(access_claim, str) or access_claim not in _ACCESS_BY_CLAIM:
        raise AuthReason.JWT_INVALID.error()
    access = _ACCESS_BY_CLAIM[access_claim]
    attach = access_claim == "roa"
    namespace = claims.get("id")
    if namespace is None:
        return Identity.build(Principal.JWT, all_namespaces=access, attach_all=attach)
    _check_namespace_name(namespace)
    return Identity.build(
        Principal.JWT,
        grants=[(namespace, access)],
        attach_namespaces=[namespace] if attach else [],
    )


def _identity_from_scopes(fine_grained: Any) -> Identity:
    if not isinstance(fine_grained, dict):
        raise AuthReason.JWT_INVALID.error()
    grants: list[tuple[str, Access]] = []
    attach: list[str] = []
    for scope_name, scope in fine_grained.items():
        if scope is None:
            continue
        if not isinstance(scope, dict):
            raise AuthReason.JWT_INVALID.error()
        names = _scope_namespaces(scope)
        _scope_tags(scope)  # validated for shape; tags grant nothing (see module doc)
        if scope_name not in _SCOPE_ACCESS:
            continue  # a scope this version does not know grants nothing
        grants.extend((name, _SCOPE_ACCESS[scope_name]) for name in names)
        if scope_name in _ATTACH_SCOPES:
            attach.extend(names)
    return Identity.build(Principal.JWT, grants=grants, attach_namespaces=attach)


def _scope_namespaces(scope: Mapping[str, Any]) -> list[str]:
    names = scope.get("ns")
    if names is None:
        return []
    if not isinstance(names, list):
        raise AuthReason.JWT_INVALID.error()
    for name in names:
        _check_namespace_name(name)
    return names


def _scope_tags(scope: Mapping[str, Any]) -> None:
    tags = scope.get("tags")
    if tags is not None and (
        not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags)
    ):
        raise AuthReason.JWT_INVALID.error()


def _check_namespace_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise AuthReason.JWT_INVALID.error()


_ACCESS_BY_NAME: Mapping[str, Access] = {access.name.lower(): access for access in Access}
_PRINCIPAL_BY_VALUE: Mapping[str, Principal] = {p.value: p for p in Principal}


def _identity_from_dict(data: Any) -> Identity:
    expected = {"principal", "all", "ns", "attach_all", "attach"}
    if not isinstance(data, dict) or set(data) != expected:
        raise _bad_identity(f"expected an object with exactly the keys {sorted(expected)}")
    principal = _lookup(_PRINCIPAL_BY_VALUE, data["principal"])
    everywhere = _lookup(_ACCESS_BY_NAME, data["all"])
    if principal is None or everywhere is None:
        raise _bad_identity("unknown principal or access level")
    if not isinstance(data["attach_all"], bool):
        raise _bad_identity("attach_all must be a boolean")
    entries = data["ns"]
    if not isinstance(entries, list):
        raise _bad_identity("ns must be a list")
    grants: list[tuple[str, Access]] = []
    for entry in entries:
        access = _lookup(_ACCESS_BY_NAME, entry[1]) if _is_pair(entry) else None
        if access is None or not isinstance(entry[0], str) or not entry[0]:
            raise _bad_identity("ns must be a list of [name, access] pairs")
        grants.append((entry[0], access))
    attach = data["attach"]
    if not isinstance(attach, list) or not all(isinstance(n, str) and n for n in attach):
        raise _bad_identity("attach must be a list of namespace names")
    return Identity.build(
        principal,
        all_namespaces=everywhere,
        grants=grants,
        attach_all=data["attach_all"],
        attach_namespaces=attach,
    )


def _lookup(table: Mapping[str, _T], key: Any) -> _T | None:
    return table.get(key) if isinstance(key, str) else None


def _is_pair(entry: Any) -> bool:
    return isinstance(entry, list) and len(entry) == 2


def _bad_identity(why: str) -> ProtocolError:
    return ProtocolError(f"forwarded identity: {why}")
