// Scenarios 24-25 of protocol.md §11 with the unmodified npm @tursodatabase/serverless.
//
// COMPAT_CONFIG: {url, authToken, prefix, scenarios, expirySleepMs}
// Prints {scenario: {ok: observations} | {threw: error}}; tests/compat asserts them.
import { connect } from "@tursodatabase/serverless";
import { attempt, config, runScenarios, sleep } from "./lib.mjs";

const P = config.prefix;

function open() {
  return connect({ url: config.url, authToken: config.authToken });
}

async function withConnection(fn) {
  const conn = open();
  try {
    return await fn(conn);
  } finally {
    await conn.close();
  }
}

// Rows come back as objects with column-name keys (and indexes); keep the named view.
const plain = (row) => (row === undefined ? null : Object.fromEntries(Object.entries(row)));
const errorOf = async (promise) => (await attempt(promise)).error ?? { unexpectedOk: true };

const scenarios = {
  // 24. all / get / run / prepare (describe) / exec (sequence) / errors
  s24_statements: () => withConnection(async (db) => {
    const t = `${P}s24`;
    await db.exec(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, name TEXT UNIQUE, v REAL, b BLOB)`);
    const first = await db.run(`INSERT INTO ${t} (name, v, b) VALUES (?, ?, ?)`, ["alice", 1.5, new Uint8Array([7, 8])]);
    const second = await db.run(`INSERT INTO ${t} (name, v) VALUES (:name, :v)`, { name: "bob", v: 42 });
    const got = plain(await db.get(`SELECT id, name, v, typeof(v) AS tv, b FROM ${t} WHERE id = ?`, [1]));
    const missing = plain(await db.get(`SELECT id FROM ${t} WHERE id = ?`, [99]));
    const all = (await db.all(`SELECT id, name FROM ${t} ORDER BY id`)).map(plain);
    const stmt = await db.prepare(`SELECT id, name AS label, v * 2 AS twice FROM ${t} WHERE id >= ?`);
    const columns = stmt.columns();
    const prepared = (await stmt.all([2])).map(plain);
    const raw = await (await db.prepare(`SELECT name FROM ${t} ORDER BY id`)).raw().all();
    const pluck = await (await db.prepare(`SELECT count(*) FROM ${t}`)).pluck().get();
    const insertStmt = await db.prepare(`INSERT INTO ${t} (name) VALUES (?)`);
    const runPrepared = await insertStmt.run(["carol"]);
    const updated = await db.run(`UPDATE ${t} SET v = 0 WHERE v IS NOT NULL`);
    await db.exec(`CREATE TABLE ${t}_x (x); INSERT INTO ${t}_x VALUES (1); INSERT INTO ${t}_x VALUES (2);`);
    const execSum = plain(await db.get(`SELECT sum(x) AS s FROM ${t}_x`));
    return {
      first, second, got, missing, all, columns, prepared, raw, pluck, runPrepared, updated, execSum,
      noSuchTable: await errorOf(db.all(`SELECT * FROM ${t}_nosuch`)),
      unique: await errorOf(db.run(`INSERT INTO ${t} (name) VALUES ('alice')`)),
      afterErrors: plain(await db.get(`SELECT count(*) AS n FROM ${t}`)),
    };
  }),

  // 24. batch(..., "write"), a failing batch rolls back, transaction() / transactionAsync()
  s24_batch_and_transactions: () => withConnection(async (db) => {
    const t = `${P}s24tx`;
    await db.exec(`CREATE TABLE ${t} (id INTEGER PRIMARY KEY, name TEXT UNIQUE)`);
    const batch = await db.batch([
      { sql: `INSERT INTO ${t} (name) VALUES (?)`, args: ["a"] },
      { sql: `INSERT INTO ${t} (name) VALUES (?)`, args: ["b"] },
      `SELECT name FROM ${t} ORDER BY id`,
    ], "write");
    const failedBatch = await errorOf(db.batch([
      `INSERT INTO ${t} (name) VALUES ('c')`, `INSERT INTO ${t} (name) VALUES ('a')`], "write"));
    const afterFailedBatch = (await db.all(`SELECT name FROM ${t} ORDER BY id`)).map(plain);

    const committed = db.transaction(async (name) => {
      await db.run(`INSERT INTO ${t} (name) VALUES (?)`, [name]);
      return db.inTransaction;
    });
    const inTxDuring = await committed.immediate("d");
    const rolledBack = db.transaction(async () => {
      await db.run(`INSERT INTO ${t} (name) VALUES ('rolled back')`);
      throw new Error("abort on purpose");
    });
    const rollbackError = await errorOf(rolledBack());
    const afterTransaction = { inTransaction: db.inTransaction, names: (await db.all(`SELECT name FROM ${t} ORDER BY id`)).map(plain) };

    const asyncCommitted = db.transactionAsync(async (tx, name) => {
      await tx.run(`INSERT INTO ${t} (name) VALUES (?)`, [name]);
      const inside = plain(await tx.get(`SELECT count(*) AS n FROM ${t}`));
      const outside = plain(await db.get(`SELECT count(*) AS n FROM ${t}`));
      return { inside, outside };
    });
    const isolation = await asyncCommitted("e");
    const asyncRolledBack = db.transactionAsync(async (tx) => {
      await tx.run(`INSERT INTO ${t} (name) VALUES ('async rolled back')`);
      throw new Error("abort on purpose");
    });
    const asyncRollbackError = await errorOf(asyncRolledBack());
    const final = (await db.all(`SELECT name FROM ${t} ORDER BY id`)).map(plain);
    return {
      batch: batch.map((r) => ({ columns: r.columns, rows: r.rows.map(plain), rowsAffected: r.rowsAffected })),
      failedBatch, afterFailedBatch, inTxDuring, rollbackError, afterTransaction,
      isolation, asyncRollbackError, final,
    };
  }),

  // 24. close() sends `close`: the harness compares the server's live streams
  s24_close: async () => {
    const db = open();
    const t = `${P}s24close`;
    await db.exec(`CREATE TABLE ${t} (x)`);
    await db.exec("BEGIN");
    await db.run(`INSERT INTO ${t} VALUES (1)`);
    const inTransaction = db.inTransaction;
    await db.close();
    const after = await withConnection(async (other) => plain(await other.get(`SELECT count(*) AS n FROM ${t}`)));
    return { inTransaction, after };
  },

  // 24 on a JWT server: rejected credentials and a read-only token
  s24_auth: async () => {
    const probe = async (authToken, sql) => {
      const db = connect({ url: config.url, authToken });
      try {
        const r = await attempt(db.all(sql));
        return r.error ? { error: r.error } : { rows: r.ok.map(plain) };
      } finally {
        await db.close().catch(() => undefined);
      }
    };
    const t = `${P}s24auth`;
    await withConnection((db) => db.exec(`CREATE TABLE ${t} (x)`));
    return {
      missing: await probe(undefined, "SELECT 1 AS one"),
      stranger: await probe(config.tokens.stranger, "SELECT 1 AS one"),
      expired: await probe(config.tokens.expired, "SELECT 1 AS one"),
      rotated: await probe(config.tokens.rotated, "SELECT 1 AS one"),
      readOnlySelect: await probe(config.tokens.readOnly, `SELECT count(*) AS n FROM ${t}`),
      readOnlyInsert: await probe(config.tokens.readOnly, `INSERT INTO ${t} VALUES (1)`),
      after: await withConnection(async (db) => plain(await db.get(`SELECT count(*) AS n FROM ${t}`))),
    };
  },

  // 25. a pause longer than the stream expiry between two calls on one connection
  s25_stream_expiry: async () => {
    const db = open();
    try {
      const t = `${P}s25`;
      await db.exec(`CREATE TABLE ${t} (x)`);
      const before = plain(await db.get("SELECT 1 AS one"));
      await sleep(config.expirySleepMs);
      const afterPause = await attempt(db.get("SELECT 2 AS two"));
      const recovered = plain(await db.get("SELECT 3 AS three"));
      await db.exec("BEGIN");
      await db.run(`INSERT INTO ${t} VALUES (1)`);
      await sleep(config.expirySleepMs);
      const txAfterPause = await attempt(db.run(`INSERT INTO ${t} VALUES (2)`));
      const inTransaction = db.inTransaction;
      const rows = plain(await db.get(`SELECT count(*) AS n FROM ${t}`));
      return {
        before,
        afterPause: afterPause.error ?? { row: plain(afterPause.ok) },
        recovered,
        txAfterPause: txAfterPause.error ?? { unexpectedOk: txAfterPause.ok },
        inTransaction, rows,
      };
    } finally {
      await db.close();
    }
  },
};

await runScenarios(scenarios, config.scenarios, {
  scenarioMs: config.scenarioMs ?? 60000, totalMs: config.totalMs ?? 110000,
});
