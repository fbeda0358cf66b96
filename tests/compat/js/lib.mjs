// Shared helpers for the compatibility scripts.
//
// Contract with tests/compat/harness.py: the configuration arrives as JSON in the
// COMPAT_CONFIG environment variable; the script prints exactly one JSON document on
// stdout (scenario name -> observations) and exits 0. Assertions live in Python, so
// the scripts only observe and encode what the client returned or threw.
import dns from "node:dns";

export const config = JSON.parse(process.env.COMPAT_CONFIG ?? "{}");

const results = {};

// RFC 6761 makes every *.localhost name loopback; browsers and systemd-resolved do
// that, plain glibc (files, dns) does not. Namespace-by-Host scenarios use URLs such
// as http://db1.localhost:PORT, so resolve those here, in the script's own runtime.
// `localhost` is pinned to 127.0.0.1 because the servers listen on IPv4 only.
export function resolveLocalhostNames() {
  const original = dns.lookup;
  dns.lookup = function lookup(hostname, options, callback) {
    if (typeof options === "function") {
      callback = options;
      options = {};
    } else if (typeof options === "number") {
      options = { family: options };
    }
    if (hostname === "localhost" || String(hostname).endsWith(".localhost")) {
      if (options?.all) {
        process.nextTick(callback, null, [{ address: "127.0.0.1", family: 4 }]);
      } else {
        process.nextTick(callback, null, "127.0.0.1", 4);
      }
      return {};
    }
    return original.call(this, hostname, options, callback);
  };
}

// JSON cannot tell 42n from 42 or carry bytes; tag them so Python sees the JS types.
export function enc(value) {
  if (value === undefined) return { $undefined: true };
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (typeof value === "number" && !Number.isFinite(value)) return { $number: String(value) };
  if (value instanceof ArrayBuffer) return { $bytes: Array.from(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) {
    return { $bytes: Array.from(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
  }
  if (value instanceof Error) return { $error: errorInfo(value) };
  if (Array.isArray(value)) return value.map(enc);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const [key, inner] of Object.entries(value)) out[key] = enc(inner);
    return out;
  }
  return value;
}

export function errorInfo(error) {
  const info = {
    name: error?.name ?? error?.constructor?.name ?? typeof error,
    message: String(error?.message ?? error),
  };
  for (const key of ["code", "rawCode", "extendedCode", "statementIndex"]) {
    if (error?.[key] !== undefined) info[key] = error[key];
  }
  if (error?.cause !== undefined && error.cause !== null) {
    info.cause = { name: error.cause.name, message: String(error.cause.message ?? error.cause) };
  }
  return info;
}

// A @libsql/client ResultSet as plain data. Rows are array-likes with named props;
// Array.from keeps the positional values, which is what the tests compare.
export function resultSet(rs) {
  return {
    columns: Array.from(rs.columns),
    columnTypes: Array.from(rs.columnTypes),
    rows: rs.rows.map((row) => Array.from(row)),
    rowsAffected: rs.rowsAffected,
    lastInsertRowid: rs.lastInsertRowid,
  };
}

// Await `promise`; an expected failure becomes {error: ...} instead of aborting the scenario.
export async function attempt(promise) {
  try {
    return { ok: await promise };
  } catch (error) {
    return { error: errorInfo(error) };
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, name) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`scenario ${name} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function finish(code = 0) {
  process.stdout.write(JSON.stringify(results));
  process.exit(code);
}

// Run the named scenarios in order. Each gets its own time budget; the whole script
// also has a watchdog so a hung client still reports what finished before it hung.
export async function runScenarios(table, names, { scenarioMs = 60000, totalMs = 110000 } = {}) {
  const watchdog = setTimeout(() => {
    results.$watchdog = `script exceeded ${totalMs} ms`;
    finish(0);
  }, totalMs);
  for (const name of names) {
    const scenario = table[name];
    if (scenario === undefined) {
      results[name] = { threw: { name: "Missing", message: `no scenario ${name}` } };
      continue;
    }
    try {
      results[name] = { ok: enc(await withTimeout(scenario(), scenarioMs, name)) };
    } catch (error) {
      results[name] = { threw: errorInfo(error) };
    }
  }
  clearTimeout(watchdog);
  finish(0);
}
