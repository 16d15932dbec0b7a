"""Index declarations: parsing PocketBase's strings and generating DDL per dialect."""

from __future__ import annotations

import pytest

from keel.core.index import Index, IndexColumn, parse_index
from keel.query.dialect import POSTGRES, SQLITE


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "CREATE UNIQUE INDEX idx_title ON posts (title)",
            Index("idx_title", "posts", True, (IndexColumn("title"),)),
        ),
        (
            'create index if not exists `idx_a` on `t` (`a` DESC, [b] COLLATE NOCASE, "c" ASC);',
            Index(
                "idx_a",
                "t",
                False,
                (
                    IndexColumn("a", descending=True),
                    IndexColumn("b", nocase=True),
                    IndexColumn("c"),
                ),
            ),
        ),
    ],
)
def test_parse_index(text: str, expected: Index) -> None:
    """Quoted and bare identifiers, directions and NOCASE are understood."""
    assert expected == parse_index(text)


@pytest.mark.parametrize(
    "text",
    [
        "CREATE INDEX idx ON t (lower(a))",
        "CREATE INDEX idx ON t (a) WHERE a != ''",
        "DROP TABLE t",
        "CREATE INDEX idx ON t ()",
        "CREATE INDEX idx ON t (a); DROP TABLE t",
        "CREATE INDEX `bad name` ON t (a)",
    ],
)
def test_parse_index_rejects(text: str) -> None:
    """Expressions, partial indexes and anything that is not an index are refused."""
    with pytest.raises(ValueError):
        parse_index(text)


def test_index_ddl_per_dialect() -> None:
    """The same declaration renders valid DDL for each engine and round-trips."""
    idx = parse_index("CREATE UNIQUE INDEX idx ON posts (title COLLATE NOCASE, views DESC)")
    assert (
        'CREATE UNIQUE INDEX "idx" ON "articles" ("title" COLLATE NOCASE, "views" DESC)'
        == idx.create_sql(SQLITE, "articles")
    )
    assert (
        'CREATE UNIQUE INDEX "idx" ON "articles" ((LOWER("title")), "views" DESC)'
        == idx.create_sql(POSTGRES, "articles")
    )
    assert idx == parse_index(idx.render())
