"""Realtime authorization matrix: who receives which event, against a model of the rules.

Five subscribers — a guest, two members, an ``admin``-role user and a
superuser — each subscribe to ``docs/*`` (``listRule``) and to two record
topics (``viewRule``). A writer then moves records in and out of each one's
visibility: toggling ``public``, changing the ``owner``, the record's
``team``, the team's members and a subscriber's own role, and deletes them.
A small Python model of the rules computes every subscriber's expected
events; the delivered ones must equal them exactly (nothing leaked, nothing
missing, per topic and in order). The model is itself checked against what
the REST API lists and views after every write.

Waiting is by marker, never by sleep: a public record every subscriber sees
closes each phase (and the run).

Around the matrix: a client whose auth record is deleted is disconnected (as
in PocketBase), and no client gets changes committed before it connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.sse import Event, SSEClient

pytestmark = pytest.mark.e2e

PASSWORD = "secret-password-1"
#: The guard keeps guests out of the owner/team/role terms: for a guest,
#: ``@request.auth.id`` is empty and ``owner = ''`` would otherwise match.
LIST_RULE = (
    "public = true || (@request.auth.id != '' && (owner = @request.auth.id"
    " || @request.auth.role = 'admin' || team.members ?= @request.auth.id))"
)
#: Like the list rule but without the team term, so record topics differ.
VIEW_RULE = (
    "public = true || (@request.auth.id != '' && (owner = @request.auth.id"
    " || @request.auth.role = 'admin'))"
)
SETTLE_SECONDS = 20.0
#: The record topics every subscriber holds besides ``docs/*``.
WATCHED = ("doc00000000001a", "doc00000000002a")

Seen = tuple[str, str, str]  # (action, record id, change)


# -- the model ------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    id: str
    public: bool = False
    owner: str = ""
    team: str = ""
    title: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "public": self.public,
            "owner": self.owner,
            "team": self.team,
            "title": self.title,
        }


@dataclass(frozen=True)
class Viewer:
    name: str
    user: str = ""  # the users record id; empty for the guest and the superuser
    superuser: bool = False


@dataclass
class World:
    """What the database holds, as far as the rules look at it."""

    roles: dict[str, str] = field(default_factory=dict)
    teams: dict[str, set[str]] = field(default_factory=dict)
    docs: dict[str, Doc] = field(default_factory=dict)

    def may_list(self, viewer: Viewer, doc: Doc) -> bool:
        if viewer.superuser or doc.public:
            return True
        if not viewer.user:
            return False
        return (
            doc.owner == viewer.user
            or self.roles[viewer.user] == "admin"
            or viewer.user in self.teams.get(doc.team, set())
        )

    def may_view(self, viewer: Viewer, doc: Doc) -> bool:
        if viewer.superuser or doc.public:
            return True
        if not viewer.user:
            return False
        return doc.owner == viewer.user or self.roles[viewer.user] == "admin"

    def topics_of(self, record_id: str) -> list[tuple[str, bool]]:
        """The topics an event of ``record_id`` is for, each with "uses the list rule"."""
        topics = [("docs/*", True)]
        if record_id in WATCHED:
            topics.append((f"docs/{record_id}", False))
        return topics

    def visible(self, viewer: Viewer, doc: Doc, list_rule: bool) -> bool:
        return self.may_list(viewer, doc) if list_rule else self.may_view(viewer, doc)


class Expectation:
    """Every subscriber's expected events, per topic, built as the writes happen."""

    def __init__(self, world: World, viewers: list[Viewer]) -> None:
        self.world = world
        self.viewers = viewers
        self.events: dict[str, dict[str, list[Seen]]] = {v.name: {} for v in viewers}

    def _add(self, viewer: Viewer, topic: str, seen: Seen) -> None:
        self.events[viewer.name].setdefault(topic, []).append(seen)

    def created(self, doc: Doc) -> None:
        self.world.docs[doc.id] = doc
        for viewer, (topic, listing) in itertools.product(
            self.viewers, self.world.topics_of(doc.id)
        ):
            if self.world.visible(viewer, doc, listing):
                self._add(viewer, topic, ("create", doc.id, ""))

    def updated(self, doc: Doc) -> None:
        old = self.world.docs[doc.id]
        self.world.docs[doc.id] = doc
        for viewer, (topic, listing) in itertools.product(
            self.viewers, self.world.topics_of(doc.id)
        ):
            was = self.world.visible(viewer, old, listing)
            now = self.world.visible(viewer, doc, listing)
            if was and now:
                self._add(viewer, topic, ("update", doc.id, ""))
            elif was:
                self._add(viewer, topic, ("delete", doc.id, "leave"))
            elif now:
                self._add(viewer, topic, ("create", doc.id, "enter"))

    def deleted(self, record_id: str) -> None:
        old = self.world.docs.pop(record_id)
        for viewer, (topic, listing) in itertools.product(
            self.viewers, self.world.topics_of(record_id)
        ):
            if self.world.visible(viewer, old, listing):
                self._add(viewer, topic, ("delete", record_id, ""))


# -- the run ----------------------------------------------------------------------


@dataclass
class Subscriber:
    viewer: Viewer
    headers: dict[str, str]
    sse: SSEClient
    got: dict[str, list[Seen]] = field(default_factory=dict)

    async def until(self, marker: str) -> None:
        """Record events until the ``docs/*`` create of ``marker`` arrives."""
        async with asyncio.timeout(SETTLE_SECONDS):
            while True:
                event: Event = await self.sse.next(SETTLE_SECONDS)
                seen = (
                    event.data["action"],
                    event.data["record"]["id"],
                    event.data.get("change", ""),
                )
                self.got.setdefault(event.name, []).append(seen)
                if event.name == "docs/*" and seen == ("create", marker, ""):
                    return


class Writer:
    """Writes as the superuser, mirroring each write into the model and checking it."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        su: dict[str, str],
        expect: Expectation,
        subscribers: list[Subscriber],
    ) -> None:
        self.http = http
        self.su = su
        self.expect = expect
        self.subscribers = subscribers
        self.markers = (f"mark{n:011d}" for n in itertools.count())

    async def create(self, doc: Doc) -> None:
        response = await self.http.post(
            "/api/collections/docs/records", json=doc.body(), headers=self.su
        )
        assert 200 == response.status_code, response.text
        self.expect.created(doc)
        await self.check_model()

    async def update(self, record_id: str, **changes: Any) -> None:
        doc = replace(self.expect.world.docs[record_id], **changes)
        response = await self.http.patch(
            f"/api/collections/docs/records/{record_id}", json=changes, headers=self.su
        )
        assert 200 == response.status_code, response.text
        self.expect.updated(doc)
        await self.check_model()

    async def delete(self, record_id: str) -> None:
        response = await self.http.delete(
            f"/api/collections/docs/records/{record_id}", headers=self.su
        )
        assert 204 == response.status_code, response.text
        self.expect.deleted(record_id)
        await self.check_model()

    async def set_members(self, team: str, members: set[str]) -> None:
        response = await self.http.patch(
            f"/api/collections/teams/records/{team}",
            json={"members": sorted(members)},
            headers=self.su,
        )
        assert 200 == response.status_code, response.text
        self.expect.world.teams[team] = set(members)
        await self.check_model()

    async def set_role(self, user: str, role: str) -> None:
        response = await self.http.patch(
            f"/api/collections/users/records/{user}", json={"role": role}, headers=self.su
        )
        assert 200 == response.status_code, response.text
        self.expect.world.roles[user] = role
        await self.check_model()

    async def barrier(self) -> None:
        """A public marker record; returns once every subscriber received it."""
        marker = next(self.markers)
        await self.create(Doc(marker, public=True, title="marker"))
        await asyncio.gather(*(s.until(marker) for s in self.subscribers))

    async def check_model(self) -> None:
        """The model agrees with what each viewer lists and views over REST."""
        world = self.expect.world
        for sub in self.subscribers:
            listed = await self.http.get(
                "/api/collections/docs/records", params={"perPage": 500}, headers=sub.headers
            )
            assert 200 == listed.status_code, listed.text
            expected = {d.id for d in world.docs.values() if world.may_list(sub.viewer, d)}
            actual = {item["id"] for item in listed.json()["items"]}
            assert expected == actual, f"model vs REST list for {sub.viewer.name}"
            for record_id in WATCHED:
                if record_id not in world.docs:
                    continue
                viewed = await self.http.get(
                    f"/api/collections/docs/records/{record_id}", headers=sub.headers
                )
                visible = world.may_view(sub.viewer, world.docs[record_id])
                assert visible == (200 == viewed.status_code), (sub.viewer.name, record_id)


async def create_schema(http: httpx.AsyncClient, su: dict[str, str]) -> None:
    users = await http.post(
        "/api/collections",
        headers=su,
        json={
            "name": "users",
            "type": "auth",
            "listRule": "",
            "viewRule": "",
            "fields": [{"name": "role", "type": "text"}],
        },
    )
    assert 200 == users.status_code, users.text
    teams = await http.post(
        "/api/collections",
        headers=su,
        json={
            "name": "teams",
            "listRule": "",
            "viewRule": "",
            "fields": [
                {"name": "name", "type": "text"},
                {
                    "name": "members",
                    "type": "relation",
                    "collectionId": users.json()["id"],
                    "maxSelect": 10,
                },
            ],
        },
    )
    assert 200 == teams.status_code, teams.text
    docs = await http.post(
        "/api/collections",
        headers=su,
        json={
            "name": "docs",
            "listRule": LIST_RULE,
            "viewRule": VIEW_RULE,
            "fields": [
                {"name": "title", "type": "text"},
                {"name": "public", "type": "bool"},
                {
                    "name": "owner",
                    "type": "relation",
                    "collectionId": users.json()["id"],
                    "maxSelect": 1,
                },
                {
                    "name": "team",
                    "type": "relation",
                    "collectionId": teams.json()["id"],
                    "maxSelect": 1,
                },
            ],
        },
    )
    assert 200 == docs.status_code, docs.text


async def create_user(http: httpx.AsyncClient, su: dict[str, str], name: str, role: str) -> str:
    created = await http.post(
        "/api/collections/users/records",
        headers=su,
        json={
            "email": f"{name}@example.com",
            "password": PASSWORD,
            "passwordConfirm": PASSWORD,
            "role": role,
        },
    )
    assert 200 == created.status_code, created.text
    user_id: str = created.json()["id"]
    return user_id


async def login(http: httpx.AsyncClient, name: str) -> dict[str, str]:
    response = await http.post(
        "/api/collections/users/auth-with-password",
        json={"identity": f"{name}@example.com", "password": PASSWORD},
    )
    assert 200 == response.status_code, response.text
    return {"Authorization": response.json()["token"]}


async def test_every_subscriber_gets_exactly_its_events(
    server: Server, http: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """Each subscriber receives exactly the events the rules allow it: 0 leaked, 0 missing."""
    await create_schema(http, su)
    world = World()
    u1 = await create_user(http, su, "m1", "member")
    u2 = await create_user(http, su, "m2", "member")
    ad = await create_user(http, su, "ad", "admin")
    world.roles = {u1: "member", u2: "member", ad: "admin"}
    for team, members in (("team0000000001a", {u1}), ("team0000000002a", {u2})):
        created = await http.post(
            "/api/collections/teams/records",
            headers=su,
            json={"id": team, "name": team, "members": sorted(members)},
        )
        assert 200 == created.status_code, created.text
        world.teams[team] = set(members)
    t1, t2 = "team0000000001a", "team0000000002a"
    viewers = [
        (Viewer("guest"), {}),
        (Viewer("m1", u1), await login(http, "m1")),
        (Viewer("m2", u2), await login(http, "m2")),
        (Viewer("admin", ad), await login(http, "ad")),
        (Viewer("superuser", superuser=True), su),
    ]
    expect = Expectation(world, [v for v, _ in viewers])
    topics = ["docs/*", *(f"docs/{r}" for r in WATCHED)]
    d1, d2 = WATCHED
    d3, d4, d5 = "doc00000000003a", "doc00000000004a", "doc00000000005a"
    async with contextlib.AsyncExitStack() as stack:
        subscribers = [
            Subscriber(viewer, headers, await stack.enter_async_context(SSEClient(server.base_url)))
            for viewer, headers in viewers
        ]
        for sub in subscribers:
            await sub.sse.subscribe(topics, headers=sub.headers)
        w = Writer(http, su, expect, subscribers)
        await w.create(Doc(d1, owner=u1))
        await w.create(Doc(d2, public=True, owner=u2, team=t1))
        await w.create(Doc(d3, owner=u2, team=t1))
        await w.update(d1, public=True)  # guest and m2 enter
        await w.update(d1, owner=u2)  # public: an update for all
        await w.update(d1, public=False)  # guest and m1 leave
        await w.update(d3, team=t2)  # m1 leaves docs/* (team), m2 stays (owner)
        await w.update(d2, public=False)  # m1 keeps docs/* through t1, loses docs/d2
        await w.update(d2, title="renamed")  # visibility unchanged
        await w.create(Doc(d4))  # no owner, no team: admin and superuser only
        await w.update(d4, owner=u1)  # m1 enters
        await w.update(d4, owner="", team=t2)  # m1 leaves, m2 enters through t2
        await w.barrier()
        # Relations are judged on the live tables: settle before changing a team.
        await w.set_members(t2, {u1, u2})
        await w.update(d3, title="seen by m1 again")  # m1 enters through t2
        await w.update(d4, title="t2 grew")  # m1 enters
        await w.barrier()
        await w.set_members(t1, set())
        await w.update(d2, title="t1 emptied")  # m1 leaves docs/*
        await w.barrier()
        await w.set_role(u2, "admin")  # m2's own client now has the admin role
        await w.create(Doc(d5, owner=u1))  # m2 sees it as an admin
        await w.update(d1, title="admin view")
        await w.set_role(u2, "member")
        await w.update(d5, title="member again")  # m2 no longer
        await w.set_role(ad, "member")  # and the admin is demoted
        await w.update(d4, title="no admin left")  # the demoted admin no longer sees it
        await w.update(d1, title="back to member")
        for record_id in (d1, d2, d3, d4, d5):
            await w.delete(record_id)
        await w.barrier()  # the end marker
        assert [] == [e for s in subscribers for e in await s.sse.none_within(0.3)]
        delivered = {s.viewer.name: s.got for s in subscribers}
        # Markers are public creates on docs/*: in both lists alike.
        assert expect.events == delivered, "\n".join(differences(expect.events, delivered))


def differences(
    expected: dict[str, dict[str, list[Seen]]], delivered: dict[str, dict[str, list[Seen]]]
) -> list[str]:
    """Readable lines for each subscriber topic whose events differ."""
    lines = []
    for name in expected:
        for topic in sorted(set(expected[name]) | set(delivered.get(name, {}))):
            want = expected[name].get(topic, [])
            got = delivered.get(name, {}).get(topic, [])
            if want != got:
                lines.append(f"{name} {topic}:")
                lines.append(f"  missing {[e for e in want if e not in got]}")
                lines.append(f"  leaked  {[e for e in got if e not in want]}")
                lines.append(f"  expected {want}\n  delivered {got}")
    return lines


async def test_deleting_the_auth_record_disconnects_its_clients(
    server: Server, http: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A client bound to an auth record that is deleted loses its stream, as in PocketBase."""
    await create_schema(http, su)
    user = await create_user(http, su, "gone", "member")
    headers = await login(http, "gone")
    async with SSEClient(server.base_url) as bound, SSEClient(server.base_url) as guest:
        await bound.subscribe(["docs/*"], headers=headers)
        await guest.subscribe(["docs/*"])
        deleted = await http.delete(f"/api/collections/users/records/{user}", headers=su)
        assert 204 == deleted.status_code, deleted.text
        async with asyncio.timeout(SETTLE_SECONDS):
            assert None is await bound.queue.get()  # the stream ended
        marker = Doc("mark00000000000", public=True)
        created = await http.post("/api/collections/docs/records", json=marker.body(), headers=su)
        assert 200 == created.status_code, created.text
        assert marker.id == (await guest.next()).data["record"]["id"]  # others stay


async def test_no_event_from_before_the_connection(
    server: Server, http: httpx.AsyncClient, su: dict[str, str]
) -> None:
    """A new client gets only changes committed after it connected, however late it is read."""
    await create_schema(http, su)
    for n in range(5):
        earlier = Doc(f"early{n:010d}", public=True)
        created = await http.post("/api/collections/docs/records", json=earlier.body(), headers=su)
        assert 200 == created.status_code, created.text
    async with SSEClient(server.base_url) as sse:
        await sse.subscribe(["docs/*", f"docs/early{0:010d}"])
        marker = Doc("mark00000000000", public=True)
        created = await http.post("/api/collections/docs/records", json=marker.body(), headers=su)
        assert 200 == created.status_code, created.text
        first = await sse.next(SETTLE_SECONDS)
        assert ("docs/*", "create", marker.id) == (
            first.name,
            first.data["action"],
            first.data["record"]["id"],
        )
