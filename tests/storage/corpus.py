"""A corpus of transactions that exercises everything a changeset-replicated SQLite must
reproduce on replicas: non-deterministic defaults and functions, triggers, cascades,
tables with and without primary keys, AUTOINCREMENT, DDL in the middle of a
transaction, CREATE TABLE … AS SELECT, FTS5, R*Tree, JSON, upserts, savepoints and
statements that fail.

Each transaction is a list of statements. A statement starting with ``!`` must fail
(only that statement is undone). The corpus runs with ``PRAGMA foreign_keys=ON``.
"""

from __future__ import annotations

SCHEMA = [
    """CREATE TABLE posts (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        body TEXT,
        created_at DATETIME DEFAULT CURRENT_TIMESTAMP,
        token BLOB DEFAULT (randomblob(16)),
        luck INTEGER DEFAULT (random())
    )""",
    """CREATE TABLE hits (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        path TEXT,
        ts DATETIME DEFAULT CURRENT_TIMESTAMP
    )""",
    "CREATE TABLE notes (id INTEGER PRIMARY KEY, content TEXT, version INTEGER)",
    "CREATE TABLE plain (a, b)",
    "CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID",
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
    """CREATE TABLE child (
        id INTEGER PRIMARY KEY,
        parent_id INTEGER NOT NULL REFERENCES parent(id) ON DELETE CASCADE,
        note TEXT
    )""",
    """CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        what TEXT,
        at TEXT DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
        r INTEGER DEFAULT (random())
    )""",
    """CREATE TRIGGER posts_ai AFTER INSERT ON posts BEGIN
        INSERT INTO audit(what) VALUES ('post ' || new.id || ' ' || hex(randomblob(2)));
    END""",
    """CREATE TRIGGER child_ad AFTER DELETE ON child BEGIN
        INSERT INTO audit(what) VALUES ('child gone ' || old.id);
    END""",
    "CREATE VIRTUAL TABLE articles USING fts5(title, body, tokenize='porter')",
    "CREATE VIRTUAL TABLE boxes USING rtree(id, minx, maxx, miny, maxy)",
    "PRAGMA user_version=7",
]

UPSERT_NOTE = """
    INSERT INTO notes (id, content, version)
    VALUES (?, ?, ?)
    ON CONFLICT(id) DO UPDATE SET
        content = CASE WHEN excluded.version > notes.version
                       THEN excluded.content ELSE notes.content END,
        version = MAX(excluded.version, notes.version)
"""

# (sql, args) pairs are allowed where a statement needs parameters.
Statement = str | tuple[str, tuple[object, ...]]

TRANSACTIONS: list[list[Statement]] = [
    [
        "INSERT INTO posts(title, body) VALUES ('Hello Turso!', "
        "'Edge-first SQLite is finally here.')",
        "INSERT INTO posts(title, body, luck) VALUES ('dice', hex(randomblob(8)), random())",
        ("INSERT INTO posts(title, body) VALUES (?, ?)", ("params", "bound values")),
        "!INSERT INTO posts(title) VALUES (NULL)",
    ],
    [
        "INSERT INTO hits(path) VALUES ('/'), ('/about'), ('/blog')",
        "DELETE FROM hits WHERE id = (SELECT max(id) FROM hits)",
        "INSERT INTO hits(path) VALUES ('/after-delete-of-max')",
    ],
    [
        (UPSERT_NOTE, (1, "first", 1)),
        (UPSERT_NOTE, (1, "stale", 0)),
        (UPSERT_NOTE, (1, "newer", 3)),
        (UPSERT_NOTE, (2, "other", 1)),
        "INSERT OR REPLACE INTO notes VALUES (2, 'replaced', 9)",
    ],
    [
        "INSERT INTO plain VALUES (1, 'a'), (1, 'a'), (2, randomblob(4)), (NULL, 3.5)",
        "DELETE FROM plain WHERE rowid = 2",
        "UPDATE plain SET b = 'z' WHERE a = 2",
        "INSERT INTO plain SELECT a + 10, b FROM plain",
    ],
    [
        "INSERT INTO kv VALUES ('b', json_object('x', 1, 'y', json_array(1, 2, 3))), "
        "('a', '{\"n\": 1}')",
        "UPDATE kv SET v = json_set(v, '$.n', 2, '$.r', abs(random()) % 1000) WHERE k = 'a'",
        "INSERT INTO kv SELECT 'e' || key, value FROM json_each('[10, 20, 30]')",
        "!INSERT INTO kv VALUES ('a', 'duplicate key')",
        "INSERT INTO kv VALUES ('a', '{\"n\": 5}') ON CONFLICT(k) DO UPDATE SET v = excluded.v",
    ],
    [
        "INSERT INTO parent VALUES (1, 'p1'), (2, 'p2'), (3, 'p3')",
        "INSERT INTO child(parent_id, note) VALUES (1, 'c1'), (1, 'c2'), (2, 'c3'), (3, 'c4')",
        "!INSERT INTO child(parent_id, note) VALUES (99, 'orphan')",
        "DELETE FROM parent WHERE id = 1",
        "UPDATE child SET note = note || '!' WHERE parent_id = 2",
    ],
    [
        "INSERT INTO articles(title, body) VALUES "
        "('TursoDB Overview', 'Distributed SQLite for edge workloads.'), "
        "('Edge Caching', 'How to serve personalized content from the edge.'), "
        "('IoT Insights', 'Collecting sensor data with minimal latency.')",
        "INSERT INTO articles(title, body) VALUES ('Running', 'runners ran and are running')",
        "UPDATE articles SET body = 'Edges everywhere, edging closer.' WHERE rowid = 2",
        "DELETE FROM articles WHERE rowid = 4",
        "INSERT INTO articles(articles) VALUES ('optimize')",
    ],
    [
        "INSERT INTO boxes VALUES (1, 0, 10, 0, 10), (2, 5, 15, 5, 15), (3, 20, 30, 20, 30)",
        "UPDATE boxes SET maxx = 12 WHERE id = 1",
        "DELETE FROM boxes WHERE id = 3",
        "INSERT INTO boxes SELECT 100 + id, minx + 1, maxx + 1, miny, maxy FROM boxes",
    ],
    [
        # DDL in the middle of a transaction, around data changes.
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, name TEXT UNIQUE)",
        "INSERT INTO tags(name) VALUES ('a'), ('b'), ('c')",
        "ALTER TABLE tags ADD COLUMN color TEXT DEFAULT 'red'",
        "UPDATE tags SET color = 'blue' WHERE name = 'b'",
        "ALTER TABLE tags RENAME COLUMN color TO colour",
        "ALTER TABLE tags ADD COLUMN doomed INTEGER",
        "UPDATE tags SET doomed = random()",
        "ALTER TABLE tags DROP COLUMN doomed",
        "CREATE INDEX tags_colour ON tags(colour)",
        "!INSERT INTO tags(name) VALUES ('a')",
        "INSERT INTO tags(name) VALUES ('d')",
        "CREATE TABLE scratch (x)",
        "INSERT INTO scratch VALUES (1), (2)",
        "DROP TABLE scratch",
        "ALTER TABLE tags RENAME TO labels",
        "!CREATE TABLE labels (x)",
        "CREATE VIEW label_names AS SELECT name FROM labels",
    ],
    [
        "CREATE TABLE post_summary AS SELECT id, title, length(body) AS n, random() AS r, "
        "CURRENT_TIMESTAMP AS copied_at FROM posts",
        "CREATE TABLE IF NOT EXISTS post_summary AS SELECT 1 AS unused",
        "INSERT INTO post_summary(title) VALUES ('after ctas')",
        "CREATE TABLE hits_copy AS SELECT * FROM hits WHERE id > 1",
        "CREATE TABLE empty_copy AS SELECT * FROM hits WHERE 0",
    ],
    [
        "DELETE FROM sqlite_sequence WHERE name = 'hits'",
        "INSERT INTO hits(path) VALUES ('/after-sequence-reset')",
        "UPDATE sqlite_sequence SET seq = 100 WHERE name = 'audit'",
        "INSERT INTO audit(what) VALUES ('manual')",
        "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)",
        "INSERT INTO audit(what) VALUES ('after deleting the max row')",
    ],
    [
        "SAVEPOINT outer_sp",
        "INSERT INTO plain VALUES ('sp', 1)",
        "SAVEPOINT inner_sp",
        "INSERT INTO plain VALUES ('sp', 2)",
        "INSERT INTO hits(path) VALUES ('/rolled-back')",
        "ROLLBACK TO inner_sp",
        "INSERT INTO plain VALUES ('sp', 3)",
        "RELEASE inner_sp",
        "RELEASE outer_sp",
    ],
    [
        "CREATE TABLE doomed_parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE doomed_child (id INTEGER PRIMARY KEY, "
        "p INTEGER REFERENCES doomed_parent(id) ON DELETE CASCADE)",
        "CREATE TRIGGER doomed_parent_ad AFTER DELETE ON doomed_parent BEGIN "
        "INSERT INTO audit(what) VALUES ('must not fire on DROP'); END",
        "CREATE TRIGGER doomed_child_ad AFTER DELETE ON doomed_child BEGIN "
        "INSERT INTO audit(what) VALUES ('cascade ' || old.id); END",
        "INSERT INTO doomed_parent VALUES (1), (2)",
        "INSERT INTO doomed_child VALUES (10, 1), (11, 2), (12, NULL)",
        "DROP TABLE doomed_parent",
        "UPDATE kv SET v = json_insert(v, '$.z', 1) WHERE k = 'b'",
        "PRAGMA user_version=8",
    ],
]

SCRIPT = """
    INSERT INTO plain VALUES ('script', 1);
    -- a comment between statements
    UPDATE notes SET content = content || ' (scripted)' WHERE id = 1;
    INSERT INTO articles(title, body) VALUES ('Scripted', 'written by a script at the edge');
    CREATE TABLE from_script (x TEXT DEFAULT (hex(randomblob(4))));
    INSERT INTO from_script DEFAULT VALUES;
    /* block comment */ INSERT INTO from_script DEFAULT VALUES;
"""


def statement_text(statement: Statement) -> tuple[str, tuple[object, ...], bool]:
    """(sql, args, must_fail)"""
    sql, args = (statement, ()) if isinstance(statement, str) else statement
    must_fail = sql.startswith("!")
    return sql.removeprefix("!"), args, must_fail
