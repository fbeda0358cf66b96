"""Claims -> rights (every combination of `a`, `id`, `p`), require(), serialisation."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgelite.auth import (
    BASIC_FULL_ACCESS,
    FULL_ACCESS,
    Access,
    Identity,
    Principal,
    identity_from_claims,
    require,
    require_attach,
)
from edgelite.errors import (
    AuthenticationError,
    NamespaceNotFoundError,
    PermissionDeniedError,
    ProtocolError,
)

N, R, W = Access.NONE, Access.READ, Access.WRITE
PROBES = ("default", "db1", "db2", "other")

# (claims, access to each of PROBES, namespaces that may be attached)
CLAIM_TABLE: list[tuple[dict[str, Any], tuple[Access, ...], set[str] | str]] = [
    # legacy form: `a` (default rw) to `id` (default: every namespace)
    ({}, (W, W, W, W), set()),
    ({"a": "rw"}, (W, W, W, W), set()),
    ({"a": "ro"}, (R, R, R, R), set()),
    ({"a": "roa"}, (R, R, R, R), "all"),
    ({"id": "db1"}, (N, W, N, N), set()),
    ({"a": "rw", "id": "db1"}, (N, W, N, N), set()),
    ({"a": "ro", "id": "db1"}, (N, R, N, N), set()),
    ({"a": "roa", "id": "db1"}, (N, R, N, N), {"db1"}),
    ({"a": "ro", "id": "default"}, (R, N, N, N), set()),
    ({"a": None, "id": None, "p": None}, (W, W, W, W), set()),
    ({"a": "ro", "p": None}, (R, R, R, R), set()),
    ({"a": "ro", "iat": 1, "sub": "x", "exp": None}, (R, R, R, R), set()),
    # fine-grained `p`: only `p` counts, `a` and `id` are ignored
    ({"p": {}}, (N, N, N, N), set()),
    ({"p": {"rw": {"ns": ["db1"]}}}, (N, W, N, N), set()),
    ({"p": {"ro": {"ns": ["db1", "db2"]}}}, (N, R, R, N), set()),
    ({"p": {"roa": {"ns": ["db1"]}}}, (N, R, N, N), {"db1"}),
    ({"p": {"rwa": {"ns": ["db1"]}}}, (N, W, N, N), {"db1"}),
    ({"p": {"ddl": {"ns": ["db1"]}}}, (N, R, N, N), set()),
    ({"p": {"ro": {"ns": ["db1"]}, "rw": {"ns": ["db1"]}}}, (N, W, N, N), set()),
    ({"p": {"rw": {"ns": ["db1"]}, "roa": {"ns": ["db2"]}}}, (N, W, R, N), {"db2"}),
    ({"p": {"ro": {"ns": ["db1"]}, "rwa": {"ns": ["db2"]}, "ddl": {"ns": ["default"]}}},
     (R, R, W, N), {"db2"}),
    ({"p": {"rw": {"ns": ["db1"]}}, "a": "ro", "id": "db2"}, (N, W, N, N), set()),
    ({"p": {"ro": {"ns": ["db1"]}}, "a": "rw"}, (N, R, N, N), set()),
    ({"p": {}, "a": "rw"}, (N, N, N, N), set()),
    ({"p": {"rw": {"ns": ["db1", "db1"]}}}, (N, W, N, N), set()),
    ({"p": {"rw": None}}, (N, N, N, N), set()),
    ({"p": {"rw": {}}}, (N, N, N, N), set()),
    ({"p": {"rw": {"ns": None}}}, (N, N, N, N), set()),
    ({"p": {"rw": {"ns": []}}}, (N, N, N, N), set()),
    ({"p": {"rw": {"tags": ["group-1"]}}}, (N, N, N, N), set()),  # tags grant nothing
    ({"p": {"future": {"ns": ["db1"]}}}, (N, N, N, N), set()),  # unknown scope: nothing
    ({"p": {"ro": {"ns": ["db1"], "extra": 1}}}, (N, R, N, N), set()),
]


@pytest.mark.parametrize(("claims", "expected", "attach"), CLAIM_TABLE)
def test_claims_to_access(
    claims: dict[str, Any], expected: tuple[Access, ...], attach: set[str] | str
) -> None:
    identity = identity_from_claims(claims)
    assert identity.principal is Principal.JWT
    assert tuple(identity.access_to(name) for name in PROBES) == expected
    for name in PROBES:
        assert identity.can_attach(name) == (attach == "all" or name in attach)
    assert Identity.from_dict(json.loads(json.dumps(identity.to_dict()))) == identity


@pytest.mark.parametrize(
    "claims",
    [
        {"a": "rwa"},
        {"a": "ddl"},
        {"a": "RW"},
        {"a": ""},
        {"a": 1},
        {"a": ["rw"]},
        {"id": ""},
        {"id": 5},
        {"id": ["db1"]},
        {"a": "xx", "p": None},
        {"p": []},
        {"p": "rw"},
        {"p": {"rw": []}},
        {"p": {"rw": "db1"}},
        {"p": {"rw": {"ns": "db1"}}},
        {"p": {"rw": {"ns": [""]}}},
        {"p": {"rw": {"ns": [1]}}},
        {"p": {"rw": {"ns": [None]}}},
        {"p": {"rw": {"tags": "g"}}},
        {"p": {"rw": {"tags": [1]}}},
        {"p": {"future": {"ns": "x"}}},
        {"p": {"future": 1}},
    ],
)
def test_malformed_claims_make_the_token_invalid(claims: dict[str, Any]) -> None:
    with pytest.raises(AuthenticationError) as caught:
        identity_from_claims(claims)
    assert (caught.value.code, caught.value.message) == ("AUTH_JWT_INVALID", "The JWT is invalid")


def test_require_hides_namespaces_without_access() -> None:
    identity = identity_from_claims({"a": "ro", "id": "db1"})
    for needs_write in (False, True):
        with pytest.raises(NamespaceNotFoundError) as caught:
            require(identity, "secret", needs_write=needs_write)
        assert caught.value.message == "Namespace `secret` doesn't exist"
        assert caught.value.http_status == 404


def test_require_write_with_read_only_access_is_forbidden() -> None:
    identity = identity_from_claims({"a": "ro"})
    assert require(identity, "default", needs_write=False) is Access.READ
    with pytest.raises(PermissionDeniedError) as caught:
        require(identity, "default", needs_write=True)
    assert caught.value.message == (
        "Authorization forbidden: Current session doesn't not have Write permission "
        "to namespace default"
    )
    assert caught.value.http_status == 403


def test_require_grants_what_the_identity_has() -> None:
    identity = identity_from_claims({"p": {"rw": {"ns": ["db1"]}, "ro": {"ns": ["db2"]}}})
    assert require(identity, "db1", needs_write=True) is Access.WRITE
    assert require(identity, "db2", needs_write=False) is Access.READ
    for full in (FULL_ACCESS, BASIC_FULL_ACCESS):
        assert require(full, "any namespace at all", needs_write=True) is Access.WRITE


def test_require_attach() -> None:
    identity = identity_from_claims({"p": {"roa": {"ns": ["db1"]}, "rw": {"ns": ["db2"]}}})
    require_attach(identity, "db1")
    with pytest.raises(PermissionDeniedError, match="doesn't not have AttachRead permission "
                       "to namespace db2"):
        require_attach(identity, "db2")
    require_attach(FULL_ACCESS, "whatever")


def test_identity_is_frozen_and_hashable() -> None:
    identity = identity_from_claims({"p": {"rw": {"ns": ["b", "a"]}}})
    assert identity.namespaces == (("a", W), ("b", W))
    with pytest.raises(AttributeError):
        identity.all_namespaces = W  # type: ignore[misc]
    assert len({identity, identity_from_claims({"p": {"rw": {"ns": ["a", "b"]}}})}) == 1


def test_build_drops_grants_that_add_nothing() -> None:
    identity = Identity.build(
        Principal.JWT, all_namespaces=R, grants=[("x", R), ("y", W), ("z", N), ("y", R)]
    )
    assert identity.namespaces == (("y", W),)
    assert identity.access_to("x") is R
    assert identity.access_to("y") is W


def test_identity_dict_form_is_small_and_plain() -> None:
    identity = identity_from_claims({"a": "roa", "id": "db1"})
    assert identity.to_dict() == {
        "principal": "jwt",
        "all": "none",
        "ns": [["db1", "read"]],
        "attach_all": False,
        "attach": ["db1"],
    }
    assert FULL_ACCESS.to_dict() == {
        "principal": "auth_disabled", "all": "write", "ns": [], "attach_all": True, "attach": [],
    }


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {},
        {"principal": "jwt", "all": "none", "ns": [], "attach_all": False},
        {"principal": "root", "all": "none", "ns": [], "attach_all": False, "attach": []},
        {"principal": "jwt", "all": "admin", "ns": [], "attach_all": False, "attach": []},
        {"principal": "jwt", "all": ["none"], "ns": [], "attach_all": False, "attach": []},
        {"principal": "jwt", "all": "none", "ns": {}, "attach_all": False, "attach": []},
        {"principal": "jwt", "all": "none", "ns": [["db1"]], "attach_all": False, "attach": []},
        {"principal": "jwt", "all": "none", "ns": [["", "read"]], "attach_all": False,
         "attach": []},
        {"principal": "jwt", "all": "none", "ns": [["db1", ["read"]]], "attach_all": False,
         "attach": []},
        {"principal": "jwt", "all": "none", "ns": [[1, "read"]], "attach_all": False,
         "attach": []},
        {"principal": "jwt", "all": "none", "ns": [], "attach_all": 1, "attach": []},
        {"principal": "jwt", "all": "none", "ns": [], "attach_all": False, "attach": "db1"},
        {"principal": "jwt", "all": "none", "ns": [], "attach_all": False, "attach": [""]},
        {"principal": "jwt", "all": "none", "ns": [], "attach_all": False, "attach": [],
         "extra": 1},
    ],
)
def test_from_dict_refuses_what_to_dict_never_produces(data: Any) -> None:
    with pytest.raises(ProtocolError, match="forwarded identity"):
        Identity.from_dict(data)


_names = st.text(min_size=1, max_size=6)
_identities = st.builds(
    Identity.build,
    st.sampled_from(list(Principal)),
    all_namespaces=st.sampled_from(list(Access)),
    grants=st.lists(st.tuples(_names, st.sampled_from(list(Access))), max_size=8),
    attach_all=st.booleans(),
    attach_namespaces=st.lists(_names, max_size=5),
)


@settings(max_examples=200, deadline=None)
@given(identity=_identities, probe=_names)
def test_dict_round_trip_preserves_every_right(identity: Identity, probe: str) -> None:
    copy = Identity.from_dict(json.loads(json.dumps(identity.to_dict())))
    assert copy == identity
    assert copy.access_to(probe) is identity.access_to(probe)
    assert copy.can_attach(probe) == identity.can_attach(probe)


@settings(max_examples=200, deadline=None)
@given(
    grants=st.lists(st.tuples(_names, st.sampled_from(list(Access))), max_size=10),
    everywhere=st.sampled_from(list(Access)),
    probe=_names,
)
def test_access_to_is_the_strongest_grant(
    grants: list[tuple[str, Access]], everywhere: Access, probe: str
) -> None:
    identity = Identity.build(Principal.JWT, all_namespaces=everywhere, grants=grants)
    expected = max([everywhere, *(access for name, access in grants if name == probe)])
    assert identity.access_to(probe) is expected


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(data=_json)
def test_from_dict_on_arbitrary_json_raises_only_protocol_error(data: Any) -> None:
    try:
        identity = Identity.from_dict(data)
    except ProtocolError as exc:
        assert exc.http_status == 400
    else:
        assert Identity.from_dict(identity.to_dict()) == identity
