"""The SQLAlchemy 2 dialects: ``edgelite://`` (HTTP and WebSocket) and ``edgelite+file://``,
with Core and ORM basics: create_all, insert, select, relationships, transactions,
rollback, reflection."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

import edgelite
from tests.support.processes import ServerProcess

DIALECT_MODES = ("http", "ws", "file")


@pytest.fixture(params=DIALECT_MODES)
def engine(request: pytest.FixtureRequest, server: ServerProcess,
           tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "file":
        url = f"edgelite+file:///{tmp_path / 'orm.db'}"
    else:
        host = f"127.0.0.1:{server.port}"
        url = f"edgelite://{host}?tls=0" + ("&transport=ws" if request.param == "ws" else "")
    created = sa.create_engine(url)
    yield created
    created.dispose()


def test_url_forms() -> None:
    dialect = sa.create_engine("edgelite://db.example.com?authToken=tok").dialect
    args, kwargs = dialect.create_connect_args(sa.engine.make_url(
        "edgelite://db.example.com?authToken=tok&consistency=strong"))
    assert args == ["https://db.example.com"]
    assert kwargs["auth_token"] == "tok" and kwargs["consistency"] == "strong"
    assert dialect.create_connect_args(sa.engine.make_url(
        "edgelite://h:8080/ns?tls=0&transport=ws"))[0] == ["ws://h:8080/ns"]
    assert dialect.create_connect_args(sa.engine.make_url(
        "edgelite://:secret@h?transport=ws"))[1]["auth_token"] == "secret"
    with pytest.raises(sa.exc.ArgumentError, match="unknown"):
        dialect.create_connect_args(sa.engine.make_url("edgelite://h?authtoken=x"))
    assert dialect.name == "sqlite" and dialect.driver == "edgelite"
    assert dialect.dbapi is edgelite.client


def test_core(engine: sa.Engine, table: str) -> None:
    metadata = sa.MetaData()
    items = sa.Table(
        table, metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(30), nullable=False, unique=True),
        sa.Column("price", sa.Numeric(10, 2)),
        sa.Column("added", sa.DateTime, server_default=sa.func.current_timestamp()),
        sa.Column("data", sa.LargeBinary),
    )
    metadata.create_all(engine)
    assert sa.inspect(engine).has_table(table)
    with engine.begin() as conn:
        result = conn.execute(items.insert().returning(items.c.id),
                              [{"name": "apple", "price": 1.25, "data": b"\x01"},
                               {"name": "pear", "price": 2.5, "data": None}])
        assert [row.id for row in result] == [1, 2]
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(items.insert(), {"name": "plum", "price": 1})
        conn.execute(items.insert(), {"name": "apple", "price": 9})  # unique: rolls back
    with engine.connect() as conn:
        rows = conn.execute(sa.select(items.c.name, items.c.price, items.c.added, items.c.data)
                            .order_by(items.c.id)).all()
        assert [(r.name, float(r.price), r.data) for r in rows] == [
            ("apple", 1.25, b"\x01"), ("pear", 2.5, None)]
        assert all(isinstance(r.added, datetime.datetime) for r in rows)
        conn.execute(items.update().where(items.c.name == "pear").values(price=3))
        conn.rollback()
        assert conn.scalar(sa.select(items.c.price).where(items.c.name == "pear")) == 2.5
    reflected = sa.Table(table, sa.MetaData(), autoload_with=engine)
    assert [c.name for c in reflected.columns] == ["id", "name", "price", "added", "data"]
    metadata.drop_all(engine)
    assert not sa.inspect(engine).has_table(table)


def test_autocommit_isolation_level(engine: sa.Engine, table: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (v)")
        conn.exec_driver_sql(f"INSERT INTO {table} VALUES (1)")
        assert conn.connection.dbapi_connection.in_transaction is False  # type: ignore[union-attr]
    with engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar() == 1


def make_models(prefix: str) -> tuple[Any, Any, Any]:
    class Base(orm.DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = f"{prefix}_author"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        name: orm.Mapped[str] = orm.mapped_column(sa.String(50))
        books: orm.Mapped[list[Book]] = orm.relationship(
            back_populates="author", cascade="all, delete-orphan", order_by="Book.id")

    class Book(Base):
        __tablename__ = f"{prefix}_book"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        title: orm.Mapped[str]
        author_id: orm.Mapped[int] = orm.mapped_column(sa.ForeignKey(f"{prefix}_author.id"))
        author: orm.Mapped[Author] = orm.relationship(back_populates="books")

    return Base, Author, Book


def test_orm(engine: sa.Engine, table: str) -> None:
    base, author_cls, book_cls = make_models(table)
    base.metadata.create_all(engine)
    with orm.Session(engine) as session:
        ada = author_cls(name="Ada", books=[book_cls(title="Notes"), book_cls(title="Sketches")])
        session.add_all([ada, author_cls(name="Grace", books=[book_cls(title="Compilers")])])
        session.commit()
        assert ada.id is not None and all(b.id is not None for b in ada.books)
    with orm.Session(engine) as session:
        loaded = session.scalars(sa.select(author_cls).options(
            orm.selectinload(author_cls.books)).order_by(author_cls.name)).all()
        assert [(a.name, [b.title for b in a.books]) for a in loaded] == [
            ("Ada", ["Notes", "Sketches"]), ("Grace", ["Compilers"])]
        joined = session.execute(sa.select(book_cls.title, author_cls.name).join(
            book_cls.author).where(author_cls.name == "Grace")).all()
        assert joined == [("Compilers", "Grace")]
        loaded[0].books.append(book_cls(title="Drafts"))
        session.flush()
        session.rollback()  # the flushed book is discarded
    with orm.Session(engine) as session, session.begin():
        grace = session.scalars(sa.select(author_cls).where(author_cls.name == "Grace")).one()
        session.delete(grace)  # cascades to her book
    with orm.Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(book_cls)) == 2
        assert [a.name for a in session.scalars(sa.select(author_cls))] == ["Ada"]
    base.metadata.drop_all(engine)


def test_orm_bulk_insert_many_rows(engine: sa.Engine, table: str) -> None:
    base, author_cls, _ = make_models(table)
    base.metadata.create_all(engine)
    with orm.Session(engine) as session, session.begin():
        session.add_all([author_cls(name=f"a{i}") for i in range(300)])
    with orm.Session(engine) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(author_cls)) == 300
        ids = session.scalars(sa.select(author_cls.id).order_by(author_cls.id)).all()
        assert ids == list(range(1, 301))
    base.metadata.drop_all(engine)
