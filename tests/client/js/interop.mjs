// Interop with npm @libsql/client on the database the Python client uses.
//
// Configuration arrives as JSON in CLIENT_INTEROP (url, table, action); the script prints
// one JSON document. @libsql/client is loaded from tests/compat/js/node_modules (installed
// by `make test`), whose path arrives in LIBSQL_CLIENT_ENTRY. Assertions live in Python.
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.env.CLIENT_INTEROP);
const { createClient } = await import(pathToFileURL(process.env.LIBSQL_CLIENT_ENTRY).href);

// JSON cannot carry bigint or bytes: tag them so Python sees the JS types.
function enc(value) {
  if (typeof value === "bigint") return { bigint: value.toString() };
  if (value instanceof ArrayBuffer) return { bytes: Buffer.from(value).toString("base64") };
  if (typeof value === "number") return { number: value };
  return value;
}

const client = createClient({ url: config.url, intMode: "bigint" });
const t = config.table;
let output;
try {
  if (config.action === "read") {
    const result = await client.execute(`SELECT k, v FROM ${t} ORDER BY k`);
    output = {
      columns: result.columns,
      rows: result.rows.map((row) => [enc(row[0]), enc(row[1])]),
    };
  } else {
    await client.execute(`CREATE TABLE ${t} (k INTEGER PRIMARY KEY, v)`);
    await client.batch([
      { sql: `INSERT INTO ${t} VALUES (?, ?)`, args: [1n, 9007199254740993n] },
      { sql: `INSERT INTO ${t} VALUES (?, ?)`, args: [2n, 1.5] },
      { sql: `INSERT INTO ${t} VALUES (?, ?)`, args: [3n, "h\u00e9llo \u2713"] },
      { sql: `INSERT INTO ${t} VALUES (?, ?)`, args: [4n, new Uint8Array([0, 1, 255])] },
      { sql: `INSERT INTO ${t} VALUES (?, ?)`, args: [5n, null] },
    ], "write");
    const tx = await client.transaction("write");
    await tx.execute({ sql: `INSERT INTO ${t} VALUES (:k, :v)`, args: { k: 6n, v: "tx" } });
    await tx.commit();
    const rolledBack = await client.transaction("write");
    await rolledBack.execute(`INSERT INTO ${t} VALUES (7, 'never')`);
    await rolledBack.rollback();
    output = { written: true };
  }
} finally {
  client.close();
}
console.log(JSON.stringify(output));
