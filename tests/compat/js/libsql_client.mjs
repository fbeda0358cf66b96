// Scenarios 1-14 and 16 of protocol.md §11 with the unmodified npm @libsql/client.
//
// COMPAT_CONFIG: {url, authToken, prefix, scenarios, expirySleepMs, distinctSql,
//                 tokens: {stranger, expired, readOnly, rotated}}
// Prints {scenario: {ok: observations} | {threw: error}}; tests/compat asserts them.
import net from "node:net";
import { createClient } from "@libsql/client";
import {
  attempt, config, enc, errorInfo, resolveLocalhostNames, resultSet, runScenarios, sleep,
} from "./lib.mjs";

resolveLocalhostNames();

const P = config.prefix;

// Every request the client makes goes through this fetch, so a scenario can wait
// until fire-and-forget requests (a stream `close` after client.close()) are done.
let inFlight = 0;
async function countingFetch(input, init) {
  inFlight += 1;
  try {
    const response = await fetch(input, init);
    const body = await response.arrayBuffer();
    return new Response(body, { status: response.status, headers: response.headers });
  } finally {
    inFlight -= 1;
  }
}

async function drained(timeoutMs = 10000) {
  // Requests queued from microtasks (e.g. by close()) start before this macrotask runs.
  await new Promise((resolve) => setImmediate(resolve));
  const deadline = Date.now() + timeoutMs;
  while (inFlight > 0 && Date.now() < deadline) await sleep(10);
  return inFlight;
}

function client(options = {}) {
  return createClient({ url: config.url, authToken: config.authToken, fetch: countingFetch, ...options });
}

async function withClient(fn, options = {}) {
  const c = client(options);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const rows = async (c, sql, args) => (await c.execute(args ? { sql, args } : sql)).rows.map((r) => Array.from(r));

const scenarios = {
  // 1. execute DDL
  s01_ddl: () => withClient(async (c) => {
    const created = await c.execute(`CREATE TABLE ${P}s01 (id INTEGER PRIMARY KEY, name TEXT, v REAL, b BLOB)`);
    const info = await rows(c, `SELECT name, type FROM pragma_table_info('${P}s01') ORDER BY cid`);
    return { created: resultSet(created), info };
  }),

  // 2. INSERT with positional args, read back
  s02_insert_positional: () => withClient(async (c) => {
    await c.execute(`CREATE TABLE ${P}s02 (id INTEGER PRIMARY KEY, name TEXT, v REAL, b BLOB)`);
    const inserted = await c.execute({
      sql: `INSERT INTO ${P}s02 (name, v, b) VALUES (?, ?, ?)`,
      args: ["alice", 42, new Uint8Array([1, 2, 3])],
    });
    const selected = await c.execute(`SELECT id, name, v, b, typeof(v) AS tv, typeof(b) AS tb FROM ${P}s02`);
    return { inserted: resultSet(inserted), selected: resultSet(selected) };
  }),

  // 3. named args for :name, @name, $name; bare and prefixed keys
  s03_named_args: () => withClient(async (c) => {
    await c.execute(`CREATE TABLE ${P}s03 (id INTEGER PRIMARY KEY, name TEXT)`);
    await c.execute(`INSERT INTO ${P}s03 (name) VALUES ('alice'), ('bob')`);
    const out = {};
    for (const prefix of [":", "@", "$"]) {
      const sql = `SELECT id, name FROM ${P}s03 WHERE name = ${prefix}name`;
      out[`${prefix}bare`] = await rows(c, sql, { name: "bob" });
      out[`${prefix}prefixed`] = await rows(c, sql, { [`${prefix}name`]: "alice" });
    }
    const inserted = await c.execute({ sql: `INSERT INTO ${P}s03 (name) VALUES (:n)`, args: { n: "carol" } });
    out.insert = resultSet(inserted);
    return out;
  }),

  // 4. value types and decltypes, with intMode "bigint"
  s04_types: () => withClient(async (c) => {
    const literals = await c.execute(
      "SELECT NULL AS n, 9007199254740993 AS big, 9223372036854775807 AS max, -2.5 AS neg, " +
      "'' AS es, x'' AS eb, 'héllo wörld ✓ 日本語 🎉' AS uni, 1.0 AS f1");
    const bound = await c.execute({
      sql: "SELECT ? AS big, ? AS neg, ? AS uni, ? AS eb, ? AS n, typeof(?) AS t_big, typeof(?) AS t_num",
      args: [9007199254740993n, -2.5, "héllo ✓ 🎉", new Uint8Array([]), null, 9007199254740993n, 42],
    });
    await c.execute(`CREATE TABLE ${P}s04 (i INTEGER, r REAL, s TEXT, bl BLOB, n NUMERIC, d DATETIME, x)`);
    await c.execute(`INSERT INTO ${P}s04 VALUES (1, 1.5, 's', x'00ff', 10, '2024-01-01', NULL)`);
    const table = await c.execute(`SELECT * FROM ${P}s04`);
    return { literals: resultSet(literals), bound: resultSet(bound), table: resultSet(table) };
  }, { intMode: "bigint" }),

  // 4 (sizes). a 20 000-row result and a 1 MiB blob / 256 KiB text round trip
  s04_large: () => withClient(async (c) => {
    const many = await c.execute(
      "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 20000) " +
      "SELECT x, 'row ' || x AS label FROM n");
    const blob = new Uint8Array(1 << 20).map((_, i) => (i * 7) % 251);
    const textValue = "ü".repeat(1 << 17);
    await c.execute(`CREATE TABLE ${P}s04_large (b BLOB, t TEXT)`);
    await c.execute({ sql: `INSERT INTO ${P}s04_large VALUES (?, ?)`, args: [blob, textValue] });
    const back = await c.execute(`SELECT b, t, length(b), length(t) FROM ${P}s04_large`);
    const [b, t, blobLength, textLength] = Array.from(back.rows[0]);
    const bytes = new Uint8Array(b);
    return {
      rowCount: many.rows.length,
      first: Array.from(many.rows[0]),
      last: Array.from(many.rows[many.rows.length - 1]),
      sumX: many.rows.reduce((sum, row) => sum + row[0], 0),
      blobEqual: bytes.length === blob.length && bytes.every((v, i) => v === blob[i]),
      textEqual: t === textValue,
      lengths: [blobLength, textLength],
    };
  }),

  // 5. batch in write / deferred / read mode; a failing middle statement commits nothing
  s05_batch_modes: () => withClient(async (c) => {
    const t = `${P}s05`;
    await c.execute(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, name TEXT UNIQUE)`);
    const ins = (name) => ({ sql: `INSERT INTO ${t} (name) VALUES (?)`, args: [name] });
    const write = await c.batch([ins("a"), ins("b"), `SELECT count(*) AS n FROM ${t}`], "write");
    const deferred = await c.batch([ins("c"), `SELECT name FROM ${t} ORDER BY id`], "deferred");
    const read = await c.batch([`SELECT count(*) AS n FROM ${t}`, `SELECT max(id) AS m FROM ${t}`], "read");
    const writeInRead = await attempt(c.batch([`SELECT 1`, ins("r")], "read"));
    const failing = await attempt(c.batch([ins("d"), ins("a"), ins("e")], "write"));
    const after = await rows(c, `SELECT name FROM ${t} ORDER BY id`);
    return {
      write: write.map(resultSet), deferred: deferred.map(resultSet), read: read.map(resultSet),
      writeInRead: writeInRead.error ?? { unexpectedOk: writeInRead.ok.map(resultSet) },
      failing: failing.error ?? { unexpectedOk: failing.ok.map(resultSet) },
      after,
    };
  }),

  // 6. the same SQL 40 times in one batch; more distinct texts than the SQL cache holds
  s06_sql_cache: () => withClient(async (c) => {
    const t = `${P}s06`;
    await c.execute(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, x INTEGER)`);
    const same = await c.batch(
      Array.from({ length: 40 }, (_, i) => ({ sql: `INSERT INTO ${t} (x) VALUES (?)`, args: [i] })), "write");
    const distinct = await c.batch(
      Array.from({ length: 40 }, (_, i) => `INSERT INTO ${t} (x) VALUES (${100 + i})`), "write");
    const tx = await c.transaction("write");
    const seen = [];
    try {
      for (let i = 0; i < config.distinctSql; i++) {
        const rs = await tx.execute(`SELECT ${i} AS k, count(*) AS n FROM ${t}`);
        seen.push(Array.from(rs.rows[0]));
      }
      await tx.commit();
    } finally {
      tx.close();
    }
    const total = await rows(c, `SELECT count(*), sum(x) FROM ${t}`);
    return {
      same: same.map((rs) => [rs.rowsAffected, rs.lastInsertRowid]),
      distinct: distinct.map((rs) => [rs.rowsAffected, rs.lastInsertRowid]),
      seen, total,
    };
  }),

  // 7. interactive transactions: commit, rollback, close without commit, read mode
  s07_transactions: () => withClient(async (c) => withClient(async (other) => {
    const t = `${P}s07`;
    await c.execute(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, name TEXT)`);
    const names = () => rows(other, `SELECT name FROM ${t} ORDER BY id`);

    const tx = await c.transaction("write");
    const inserted = resultSet(await tx.execute({ sql: `INSERT INTO ${t} (name) VALUES (?)`, args: ["committed"] }));
    const inside = Array.from((await tx.execute(`SELECT count(*) FROM ${t}`)).rows[0]);
    const outsideDuring = await names();
    await tx.commit();
    const afterCommit = { closed: tx.closed, names: await names() };

    const rolled = await c.transaction("write");
    await rolled.execute(`INSERT INTO ${t} (name) VALUES ('rolled back')`);
    await rolled.rollback();
    const afterRollback = { closed: rolled.closed, names: await names() };

    const abandoned = await c.transaction("write");
    await abandoned.execute(`INSERT INTO ${t} (name) VALUES ('abandoned')`);
    abandoned.close();
    // Needs the write lock the abandoned transaction held: only works once it rolled back.
    await other.execute(`INSERT INTO ${t} (name) VALUES ('after close')`);
    const afterClose = { closed: abandoned.closed, names: await names() };

    const reader = await c.transaction("read");
    const readCount = Array.from((await reader.execute(`SELECT count(*) FROM ${t}`)).rows[0]);
    const readWrite = await attempt(reader.execute(`INSERT INTO ${t} (name) VALUES ('read tx write')`));
    reader.close();
    const afterRead = await names();
    return {
      inserted, inside, outsideDuring, afterCommit, afterRollback, afterClose, readCount,
      readWrite: readWrite.error ?? { unexpectedOk: resultSet(readWrite.ok) }, afterRead,
    };
  })),

  // 8. two concurrent write transactions + 20 parallel executes
  s08_concurrency: () => withClient(async (c) => {
    const t = `${P}s08`;
    await c.execute(`CREATE TABLE ${t}_counter (id INTEGER PRIMARY KEY, n INTEGER)`);
    await c.execute(`INSERT INTO ${t}_counter VALUES (1, 0)`);
    await c.execute(`CREATE TABLE ${t}_log (i INTEGER)`);
    const increment = async () => {
      const tx = await c.transaction("write");
      try {
        const current = (await tx.execute(`SELECT n FROM ${t}_counter WHERE id = 1`)).rows[0][0];
        await tx.execute({ sql: `UPDATE ${t}_counter SET n = ? WHERE id = 1`, args: [current + 1] });
        await tx.commit();
        return "committed";
      } finally {
        tx.close();
      }
    };
    const inserts = Array.from({ length: 20 }, (_, i) =>
      c.execute({ sql: `INSERT INTO ${t}_log (i) VALUES (?)`, args: [i] }).then((rs) => rs.rowsAffected));
    const settled = await Promise.allSettled([increment(), increment(), ...inserts]);
    return {
      outcomes: settled.map((s) => (s.status === "fulfilled" ? s.value : { error: errorInfo(s.reason) })),
      counter: await rows(c, `SELECT n FROM ${t}_counter`),
      log: await rows(c, `SELECT count(*), sum(i) FROM ${t}_log`),
    };
  }),

  // 8 (deferred). two read-then-write transactions that overlap: whatever the server
  //    does (serialise them, or fail one with SQLITE_BUSY), no update may be lost.
  s08_deferred_conflict: () => withClient(async (c) => {
    const t = `${P}s08d`;
    await c.execute(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, n INTEGER)`);
    await c.execute(`INSERT INTO ${t} VALUES (1, 0)`);
    let reads = 0;
    const bothRead = async () => {
      // A server that serialises whole transactions never lets the second read
      // happen before the first commits; give up waiting after 300 ms.
      const deadline = Date.now() + 300;
      while (reads < 2 && Date.now() < deadline) await sleep(5);
    };
    const increment = async () => {
      const tx = await c.transaction("deferred");
      try {
        const current = (await tx.execute(`SELECT n FROM ${t} WHERE id = 1`)).rows[0][0];
        reads += 1;
        await bothRead();
        await tx.execute({ sql: `UPDATE ${t} SET n = ? WHERE id = 1`, args: [current + 1] });
        await tx.commit();
        return "committed";
      } catch (error) {
        return { error: errorInfo(error) };
      } finally {
        tx.close();
      }
    };
    const outcomes = await Promise.all([increment(), increment()]);
    return { outcomes, counter: await rows(c, `SELECT n FROM ${t}`) };
  }),

  // 9. a transaction idle past the server's stream expiry (HTTP: fails then recovers;
  //    WebSocket streams do not idle-expire, so there the transaction must survive)
  s09_stream_expiry: () => withClient(async (c) => {
    const t = `${P}s09`;
    await c.execute(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, name TEXT)`);
    const tx = await c.transaction("write");
    await tx.execute(`INSERT INTO ${t} (name) VALUES ('idle')`);
    await sleep(config.expirySleepMs);
    const afterIdle = await attempt(tx.execute(`SELECT count(*) FROM ${t}`));
    const commit = await attempt(tx.commit());
    tx.close();
    const recovered = await rows(c, `SELECT count(*) FROM ${t}`);
    return {
      afterIdle: afterIdle.error ?? { rows: resultSet(afterIdle.ok).rows },
      commit: commit.error ?? "ok",
      recovered,
    };
  }),

  // 10. executeMultiple, and one whose second statement fails
  s10_execute_multiple: () => withClient(async (c) => {
    const t = `${P}s10`;
    const ok = await c.executeMultiple(
      `CREATE TABLE ${t}_a (x); INSERT INTO ${t}_a VALUES (1); INSERT INTO ${t}_a VALUES (2);`);
    const count = await rows(c, `SELECT count(*), sum(x) FROM ${t}_a`);
    const failing = await attempt(c.executeMultiple(
      `CREATE TABLE ${t}_b (x); INSERT INTO ${t}_nosuch VALUES (1); CREATE TABLE ${t}_c (x);`));
    const tables = await rows(c,
      `SELECT name FROM sqlite_master WHERE name IN ('${t}_b', '${t}_c') ORDER BY name`);
    return { ok: ok ?? null, count, failing: failing.error ?? { unexpectedOk: true }, tables };
  }),

  // 11. migrate(): the batch runs with foreign keys off, and they are back on afterwards
  s11_migrate: () => withClient(async (c) => {
    const t = `${P}s11`;
    const migrated = await c.migrate([
      `CREATE TABLE ${t}_parent (id INTEGER PRIMARY KEY)`,
      `CREATE TABLE ${t}_child (pid INTEGER REFERENCES ${t}_parent(id))`,
      `INSERT INTO ${t}_child VALUES (99)`,
      `SELECT * FROM pragma_foreign_keys`,
    ]);
    const child = await rows(c, `SELECT pid FROM ${t}_child`);
    return { migrated: migrated.map(resultSet), child };
  }),

  // 12. error codes
  s12_errors: () => withClient(async (c) => {
    const t = `${P}s12`;
    await c.execute(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY)`);
    await c.execute(`INSERT INTO ${t} VALUES (1)`);
    const err = async (stmt) => (await attempt(c.execute(stmt))).error ?? { unexpectedOk: true };
    return {
      noSuchTable: await err(`SELECT * FROM ${t}_nosuch`),
      unique: await err(`INSERT INTO ${t} VALUES (1)`),
      tooFewArgs: await err({ sql: `SELECT ?, ?`, args: [1] }),
      tooManyArgs: await err({ sql: `SELECT ?`, args: [1, 2] }),
      twoStatements: await err(`SELECT 1; SELECT 2`),
      stillWorks: await rows(c, `SELECT count(*) FROM ${t}`),
    };
  }),

  // 13. JWT auth over HTTP (only on a server with auth)
  s13_auth: async () => {
    const probe = async (authToken, sql = "SELECT 1 AS one") =>
      withClient(async (c) => {
        const r = await attempt(c.execute(sql));
        return r.error ? { error: r.error } : { rows: resultSet(r.ok).rows };
      }, { authToken });
    const t = `${P}s13`;
    await withClient((c) => c.execute(`CREATE TABLE ${t} (x INTEGER)`));
    return {
      valid: await probe(config.authToken),
      rotated: await probe(config.tokens.rotated),
      missing: await probe(undefined),
      stranger: await probe(config.tokens.stranger),
      expired: await probe(config.tokens.expired),
      readOnlySelect: await probe(config.tokens.readOnly, `SELECT count(*) FROM ${t}`),
      readOnlyInsert: await probe(config.tokens.readOnly, `INSERT INTO ${t} VALUES (1)`),
      after: await withClient((c) => rows(c, `SELECT count(*) FROM ${t}`)),
    };
  },

  // 14. client.close() releases every server stream, including an unfinished transaction
  s14_close: async () => {
    const c = client();
    const t = `${P}s14`;
    await c.execute(`CREATE TABLE ${t} (x INTEGER)`);
    await c.batch([`INSERT INTO ${t} VALUES (1)`, `SELECT count(*) FROM ${t}`], "write");
    const done = await c.transaction("write");
    await done.execute(`INSERT INTO ${t} VALUES (2)`);
    await done.commit();
    const open = await c.transaction("deferred");
    await open.execute(`SELECT count(*) FROM ${t}`);
    c.close();
    const pending = await drained();
    return { closed: c.closed, openTxClosed: open.closed, pendingRequests: pending };
  },

  // 16. WebSocket older than 60 s: a new socket is opened while the old one still
  //     carries a transaction; both keep working. The client reads the time through
  //     `new Date()`, so the scenario moves that clock instead of waiting a minute.
  s16_ws_reconnect: async () => {
    const target = new URL(config.url);
    let accepted = 0;
    const upBytes = []; // bytes the client sent on each relayed socket
    const socketClosed = [];
    const proxy = net.createServer((down) => {
      const index = accepted;
      accepted += 1;
      upBytes.push(0);
      socketClosed.push(false);
      down.on("data", (chunk) => { upBytes[index] += chunk.length; });
      down.on("close", () => { socketClosed[index] = true; });
      const up = net.connect(Number(target.port), "127.0.0.1");
      down.pipe(up).on("error", () => down.destroy());
      up.pipe(down).on("error", () => up.destroy());
      down.on("error", () => up.destroy());
      up.on("error", () => down.destroy());
      down.on("close", () => up.destroy());
      up.on("close", () => down.destroy());
    });
    await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const url = `ws://${target.hostname}:${proxy.address().port}`;
    const RealDate = globalThis.Date;
    let offsetMs = 0;
    globalThis.Date = class extends RealDate {
      constructor(...args) { if (args.length === 0) super(RealDate.now() + offsetMs); else super(...args); }
      static now() { return RealDate.now() + offsetMs; }
    };
    const c = createClient({ url, authToken: config.authToken });
    try {
      const t = `${P}s16`;
      await c.execute(`CREATE TABLE ${t} (x INTEGER)`);
      const tx = await c.transaction("write");
      await tx.execute(`INSERT INTO ${t} VALUES (1)`);
      offsetMs = 61000;
      const first = await rows(c, "SELECT 1");
      const deadline = RealDate.now() + 10000;
      while (accepted < 2 && RealDate.now() < deadline) await sleep(10);
      // The client switches to the new socket once its handshake completed; wait
      // until the new socket has carried more than the upgrade and hello.
      const handshakeBytes = upBytes[1] ?? 0;
      let second;
      for (let i = 0; i < 100; i++) {
        second = await rows(c, `SELECT count(*) FROM ${t}`);
        if ((upBytes[1] ?? 0) > handshakeBytes) break;
        await sleep(20);
      }
      const inTx = Array.from((await tx.execute(`SELECT count(*) FROM ${t}`)).rows[0]);
      await tx.commit();
      const beforeAfter = upBytes[1] ?? 0;
      const after = await rows(c, `SELECT count(*) FROM ${t}`);
      // The old socket is closed by the client once its last stream (the tx) ended.
      const closeDeadline = RealDate.now() + 5000;
      while (!socketClosed[0] && RealDate.now() < closeDeadline) await sleep(10);
      return {
        connections: accepted, first, second, inTx, after,
        afterUsedNewSocket: (upBytes[1] ?? 0) > beforeAfter, oldSocketClosed: socketClosed[0],
      };
    } finally {
      c.close();
      globalThis.Date = RealDate;
      proxy.close();
    }
  },

  // 17. JWT auth over WebSocket: hello_error codes reach the caller
  s17_ws_auth: async () => {
    const probe = async (authToken) =>
      withClient(async (c) => {
        const r = await attempt(c.execute("SELECT 1 AS one"));
        return r.error ? { error: r.error } : { rows: resultSet(r.ok).rows };
      }, { authToken });
    const t = `${P}s17`;
    await withClient((c) => c.execute(`CREATE TABLE ${t} (x INTEGER)`));
    const outcome = (r) => (r.error ? { error: r.error } : { rows: resultSet(r.ok).rows });
    // A read-only token: reads work, the write fails, and the socket stays usable.
    const readOnly = await withClient(async (c) => ({
      select: outcome(await attempt(c.execute(`SELECT count(*) FROM ${t}`))),
      insert: outcome(await attempt(c.execute(`INSERT INTO ${t} VALUES (1)`))),
      again: outcome(await attempt(c.execute(`SELECT count(*) FROM ${t}`))),
    }), { authToken: config.tokens.readOnly });
    return {
      valid: await probe(config.authToken),
      rotated: await probe(config.tokens.rotated),
      missing: await probe(undefined),
      stranger: await probe(config.tokens.stranger),
      expired: await probe(config.tokens.expired),
      readOnly,
      after: await withClient((c) => rows(c, `SELECT count(*) FROM ${t}`)),
    };
  },
};

await runScenarios(scenarios, config.scenarios, {
  scenarioMs: config.scenarioMs ?? 60000, totalMs: config.totalMs ?? 110000,
});
