"""The permission decision order, table-driven (pure logic over real events)."""

from __future__ import annotations

import time

import pytest

from actors.events import Envelope, Event, Recorded
from actors.rbac import RBAC, RbacState, RoleAssigned, RoleCreated, RuleSet

ROOM, GROUP, DM = "r1", "g1", "dm1"


def state(*events: Event) -> RbacState:
    s = RbacState()
    for i, ev in enumerate(events, 1):
        s.apply(Recorded(i, Envelope(f"e{i}", RBAC, int(time.time() * 1000), ev)))
    return s


BASE = state(
    RoleAssigned("admin", "adam", True),
    RoleAssigned("moderator", "mo", True),
    RoleCreated("helpers", "Helpers"),
    RoleAssigned("helpers", "hal", True),
    # An admin denied room.manage in one room.
    RuleSet("user:adam", f"room:{ROOM}", "room.manage", "deny"),
    # A user deny beats a role grant.
    RuleSet("role:helpers", "server", "message.manage", "allow"),
    RuleSet("user:hal", "server", "message.manage", "deny"),
    # A room deny beats a server grant.
    RuleSet("role:helpers", "server", "room.ban-member", "allow"),
    RuleSet("role:helpers", f"room:{ROOM}", "room.ban-member", "deny"),
    # Group scope.
    RuleSet("role:everyone", f"group:{GROUP}", "message.post", "deny"),
    RuleSet("user:vip", f"room:{ROOM}", "room.manage", "allow"),
    # A DM participant's right to pin yields to an explicit deny.
    RuleSet("user:hal", "server", "message.pin", "deny"),
    # The owner cannot be denied.
    RuleSet("user:olga", "server", "message.post", "deny"),
)

CASES = [
    # (who, is_owner, permission, room, group, dm, creator, expected, reason fragment)
    ("olga", True, "server.manage", "", "", False, "", True, "owner"),
    ("olga", True, "message.post", ROOM, "", False, "", True, "owner"),
    ("adam", False, "room.manage", "r2", "", False, "", True, "role admin"),
    ("adam", False, "room.manage", ROOM, "", False, "", False, "denied to user:adam"),
    ("hal", False, "message.manage", ROOM, "", False, "", False, "denied to user:hal"),
    ("hal", False, "room.ban-member", "r2", "", False, "", True, "allowed to role:helpers"),
    ("hal", False, "room.ban-member", ROOM, "", False, "", False, "at room:r1"),
    ("ann", False, "message.post", "r3", GROUP, False, "", False, "at group:g1"),
    ("ann", False, "message.post", "r3", "g2", False, "", True, "role everyone"),
    ("olga", True, "message.manage", DM, "", True, "", False, "DM privacy"),
    ("mo", False, "message.manage", DM, "", True, "", False, "DM privacy"),
    ("ann", False, "message.post", DM, "", True, "", True, "role everyone"),
    ("ann", False, "server.manage", "", "", False, "", False, "no rule"),
    ("ann", False, "role.assign", ROOM, "", False, "", False, "no rule"),
    ("mo", False, "admin.view-users", "", "", False, "", True, "role moderator"),
    ("mo", False, "admin.view-system", "", "", False, "", False, "no rule"),
    ("ann", False, "room.manage", ROOM, "", False, "ann", True, "room creator"),
    ("vip", False, "room.manage", ROOM, "", False, "", True, "allowed to user:vip"),
    ("ann", False, "no.such", "", "", False, "", False, "unknown permission"),
    # message.pin: moderators, channel creators, any DM participant; not plain members.
    ("mo", False, "message.pin", ROOM, "", False, "", True, "role moderator"),
    ("ann", False, "message.pin", ROOM, "", False, "ann", True, "room creator"),
    ("ann", False, "message.pin", ROOM, "", False, "", False, "no rule"),
    ("ann", False, "message.pin", DM, "", True, "", True, "DM participant"),
    ("hal", False, "message.pin", DM, "", True, "", False, "denied to user:hal"),
]


@pytest.mark.parametrize(
    ("who", "owner", "perm", "room", "group", "dm", "creator", "expected", "reason"), CASES
)
def test_decision_order(
    who: str,
    owner: bool,
    perm: str,
    room: str,
    group: str,
    dm: bool,
    creator: str,
    expected: bool,
    reason: str,
) -> None:
    verdict = BASE.decide(who, owner, perm, room=room, group=group, is_dm=dm, creator=creator)
    assert verdict.allowed is expected
    assert reason in verdict.reason


def test_clear_and_role_deletion_remove_rules() -> None:
    s = state(
        RoleCreated("x", "X"),
        RoleAssigned("x", "u", True),
        RuleSet("role:x", "server", "server.manage", "allow"),
    )
    assert s.allowed("u", False, "server.manage")
    s2 = state(
        RoleCreated("x", "X"),
        RoleAssigned("x", "u", True),
        RuleSet("role:x", "server", "server.manage", "allow"),
        RuleSet("role:x", "server", "server.manage", "clear"),
    )
    assert not s2.allowed("u", False, "server.manage")
