"""``edgelite.aio``: the same DB-API, awaited, in every mode."""

from __future__ import annotations

import asyncio

import pytest

import edgelite


async def test_connect_awaited_and_closed(database_url: str, table: str) -> None:
    conn = await edgelite.aio.connect(database_url)
    try:
        cur = await conn.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, v TEXT)")
        assert cur.description is None
        cur = await conn.execute(f"INSERT INTO {table} (v) VALUES (?)", ("a",))
        assert (cur.rowcount, cur.lastrowid) == (1, 1)
        assert conn.in_transaction
        await conn.commit()
        cur = await conn.execute(f"SELECT id, v FROM {table}")
        assert [d[:2] for d in cur.description] == [("id", "INTEGER"), ("v", "TEXT")]
        assert await cur.fetchall() == [(1, "a")]
    finally:
        await conn.close()
    with pytest.raises(edgelite.ProgrammingError, match="closed database"):
        await conn.execute("SELECT 1")


async def test_async_with_connect_closes_and_rolls_back(database_url: str,
                                                        table: str) -> None:
    async with edgelite.aio.connect(database_url) as conn:
        await conn.execute(f"CREATE TABLE {table} (v)")
        await conn.execute(f"INSERT INTO {table} VALUES (1)")
    async with edgelite.aio.connect(database_url) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}")
        assert await cur.fetchone() == (0,)  # closed without commit: rolled back


async def test_connection_as_transaction_scope(database_url: str, table: str) -> None:
    async with edgelite.aio.connect(database_url) as conn:
        await conn.execute(f"CREATE TABLE {table} (v UNIQUE)")
        async with conn:
            await conn.execute(f"INSERT INTO {table} VALUES (1)")
        with pytest.raises(edgelite.IntegrityError):
            async with conn:
                await conn.execute(f"INSERT INTO {table} VALUES (2)")
                await conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert not conn.in_transaction
        cur = await conn.execute(f"SELECT v FROM {table}")
        assert await cur.fetchall() == [(1,)]


async def test_async_iteration_fetchmany_and_row_factory(database_url: str) -> None:
    async with edgelite.aio.connect(database_url) as conn:
        conn.row_factory = edgelite.Row
        cur = await conn.execute("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL "
                                 "SELECT x + 1 FROM n WHERE x < 5) SELECT x AS value FROM n")
        first = await cur.fetchmany(2)
        assert [row["value"] for row in first] == [1, 2]
        assert [row["value"] async for row in cur] == [3, 4, 5]


async def test_executemany_executescript_and_errors(database_url: str, table: str) -> None:
    async with edgelite.aio.connect(database_url, isolation_level=None) as conn:
        await conn.executescript(f"CREATE TABLE {table} (v); INSERT INTO {table} VALUES (0);")
        cur = await conn.executemany(f"INSERT INTO {table} VALUES (?)", [(1,), (2,)])
        assert cur.rowcount == 2
        with pytest.raises(edgelite.OperationalError, match="no such table"):
            await conn.execute(f"SELECT * FROM {table}_missing")
        with pytest.raises(edgelite.ProgrammingError):
            await conn.execute("SELECT ?", (1, 2))
        cur = await conn.execute(f"SELECT sum(v) FROM {table}")
        assert await cur.fetchone() == (3,)


async def test_tasks_share_a_connection(database_url: str, table: str) -> None:
    async with edgelite.aio.connect(database_url, isolation_level=None) as conn:
        await conn.execute(f"CREATE TABLE {table} (v)")

        async def insert(value: int) -> None:
            await conn.execute(f"INSERT INTO {table} VALUES (?)", (value,))

        await asyncio.gather(*(insert(i) for i in range(20)))
        cur = await conn.execute(f"SELECT count(*), sum(v) FROM {table}")
        assert await cur.fetchone() == (20, sum(range(20)))


async def test_autocommit_modes(database_url: str, table: str) -> None:
    async with edgelite.aio.connect(database_url, autocommit=False) as conn:
        assert conn.autocommit is False and conn.in_transaction
        await conn.execute(f"CREATE TABLE {table} (v)")
        await conn.commit()
        await conn.set_autocommit(True)
        await conn.execute(f"INSERT INTO {table} VALUES (1)")
        assert not conn.in_transaction
    async with edgelite.aio.connect(database_url) as other:
        cur = await other.execute(f"SELECT count(*) FROM {table}")
        assert await cur.fetchone() == (1,)


async def test_create_function(database_url: str, mode: str) -> None:
    async with edgelite.aio.connect(database_url) as conn:
        if mode == "local":
            await conn.create_function("twice", 1, lambda x: x * 2)
            cur = await conn.execute("SELECT twice(4)")
            assert await cur.fetchone() == (8,)
        else:
            with pytest.raises(edgelite.NotSupportedError):
                await conn.create_function("twice", 1, lambda x: x * 2)
