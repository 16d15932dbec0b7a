"""Table-driven HTTP scenarios, in the spirit of PocketBase's ApiScenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class ApiScenario:
    """One request and what its response must show.

    ``as_superuser`` sends the superuser token; ``codes`` maps a field of the
    error ``data`` to its expected validation code.
    """

    name: str
    method: str
    url: str
    status: int
    body: Any = None
    as_superuser: bool = False
    content: tuple[str, ...] = ()
    not_content: tuple[str, ...] = ()
    codes: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    async def run(self, client: httpx.AsyncClient, su: dict[str, str]) -> httpx.Response:
        headers = dict(self.headers)
        if self.as_superuser:
            headers.update(su)
        if self.raw is not None:
            response = await client.request(
                self.method, self.url, content=self.raw, headers=headers
            )
        elif self.body is None:
            response = await client.request(self.method, self.url, headers=headers)
        else:
            response = await client.request(self.method, self.url, json=self.body, headers=headers)
        assert self.status == response.status_code, f"{self.name}: {response.text}"
        for text in self.content:
            assert text in response.text, f"{self.name}: {text!r} not in {response.text}"
        for text in self.not_content:
            assert text not in response.text, f"{self.name}: {text!r} in {response.text}"
        if self.codes:
            data = response.json()["data"]
            assert self.codes == {k: data[k]["code"] for k in self.codes if k in data}, (
                f"{self.name}: {data}"
            )
        if response.status_code >= 400:
            assert {"status", "message", "data"} == set(response.json())
            assert self.status == response.json()["status"]
        return response
