#!/usr/bin/env node
// Client scenario with node-postgres (`pg`) and `pg-copy-streams`: the same
// steps straight to PostgreSQL and through Sluice, compared.
//
// Usage:
//   npm ci --prefix tests/clients
//   node tests/clients/pg_scenario.mjs --direct DSN --via DSN [--step-timeout SECONDS]
//
// DIRECT goes straight to PostgreSQL, VIA through Sluice (database = the
// connection name, password = the token), e.g.
//   postgresql://agent:TOKEN@127.0.0.1:15432/patients?sslmode=disable
// A DSN is a postgres:// URI or a libpq key=value string (host, hostaddr,
// port, dbname, user, password, sslmode are understood). Both must reach the
// same database: the script creates one table scen_<pid>_<random> on the
// DIRECT side, both sides read and write only that table (each its own rows,
// told apart by the column `side`), and it is dropped at the end on the DIRECT
// side, whatever happens. Until Sluice runs, DIRECT=VIA (both direct) must pass.
//
// Steps, each run on both sides, checked against what is expected and compared:
//   a simple-query    several rows and types, no parameters (simple query protocol)
//   b extended-query  parameterised query (Parse/Bind/Execute)
//   c write           parameterised INSERTs, UPDATE, DELETE: row counts
//   d copy-out        COPY (SELECT ...) TO STDOUT of 5000 rows via pg-copy-streams, byte for byte
//   e copy-in         COPY ... FROM STDIN of 2000 rows via pg-copy-streams, then count
//   f prepared        named query {name, text, values} executed 1000 times
//   g cancel          SELECT pg_sleep(30) cancelled after 0.5 s by pg's own
//                     Client#cancel (a CancelRequest with the backend key data
//                     on a new connection) -> 57014, session still works
//   h error           SELECT 1/0 -> 22012, session still works
//
// Prints `ok <step>` or `FAIL <step>: <why>` per step, then `N passed, M failed`;
// exit status 0 only if every step passed. --step-timeout (default 60) bounds
// each step on each side.

import crypto from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import copyStreams from 'pg-copy-streams'

const SIDES = ['direct', 'via']

class Check extends Error {}
class StepTimeout extends Error {}

function expect(cond, why) {
  if (!cond) throw new Check(why)
}

// ---------------------------------------------------------------- arguments and connections

function parseArgs(argv) {
  const out = { stepTimeout: 60 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--direct') out.direct = argv[++i]
    else if (a === '--via') out.via = argv[++i]
    else if (a === '--step-timeout') out.stepTimeout = Number(argv[++i])
    else {
      console.error(`unknown argument ${a}`)
      process.exit(2)
    }
  }
  if (!out.direct || !out.via) {
    console.error('usage: pg_scenario.mjs --direct DSN --via DSN [--step-timeout SECONDS]')
    process.exit(2)
  }
  return out
}

// libpq key=value strings are not understood by pg; turn them into a config.
function clientConfig(dsn) {
  const base = { connectionTimeoutMillis: 10000 }
  if (/^postgres(ql)?:\/\//.test(dsn)) return { ...base, connectionString: dsn }
  const kv = {}
  const re = /\s*([a-zA-Z_]+)\s*=\s*('((?:[^'\\]|\\.)*)'|\S*)/g
  let m
  while ((m = re.exec(dsn)) !== null) {
    kv[m[1]] = m[3] !== undefined ? m[3].replace(/\\(.)/g, '$1') : m[2]
  }
  const cfg = { ...base }
  if (kv.host || kv.hostaddr) cfg.host = kv.hostaddr || kv.host
  if (kv.port) cfg.port = Number(kv.port)
  if (kv.dbname) cfg.database = kv.dbname
  if (kv.user) cfg.user = kv.user
  if (kv.password) cfg.password = kv.password
  if (kv.sslmode && kv.sslmode !== 'disable') {
    cfg.ssl = kv.sslmode === 'verify-full' || kv.sslmode === 'verify-ca' ? {} : { rejectUnauthorized: false }
  } else cfg.ssl = false
  return cfg
}

async function connect(dsn) {
  const client = new pg.Client(clientConfig(dsn))
  client.on('error', () => {}) // a dropped connection shows up in the next query instead
  await client.connect()
  return client
}

const ident = (name) => '"' + name.replace(/"/g, '""') + '"'
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b)
const show = (v) => JSON.stringify(v).slice(0, 300)

// ---------------------------------------------------------------- the steps
// Each step is step(client, side, table, dsn) -> an observation that must be
// equal (as JSON) on both sides; it throws Check when the side itself is wrong.

const SIMPLE_SQL = `
SELECT g AS n,
       'row ' || g AS label,
       (g * 1.25)::numeric(10, 2) AS amount,
       timestamptz '2024-01-02 03:04:05.123456+00' + g * interval '1 hour' AS ts,
       g % 2 = 0 AS even,
       CASE WHEN g % 3 = 0 THEN NULL ELSE g END AS maybe,
       decode(lpad(to_hex(g), 2, '0') || 'ff00', 'hex') AS raw,
       json_build_object('n', g, 'tags', json_build_array('a', g)) AS doc
FROM generate_series(1, 5) AS g
ORDER BY g`

async function stepSimple(client) {
  const r = await client.query({ text: SIMPLE_SQL, rowMode: 'array' }) // no values: simple protocol
  const rows = r.rows
  expect(rows.length === 5, `${rows.length} rows, want 5`)
  expect(rows[0][1] === 'row 1' && rows[0][2] === '1.25', `row 1 is ${show(rows[0])}`)
  expect(rows[2][5] === null, 'NULL did not come back as null')
  expect(Buffer.isBuffer(rows[0][6]) && rows[0][6].toString('hex') === '01ff00', `bytea is ${show(rows[0][6])}`)
  expect(same(rows[1][7], { n: 2, tags: ['a', 2] }), `json is ${show(rows[1][7])}`)
  expect(rows[0][3] instanceof Date && rows[0][3].toISOString() === '2024-01-02T04:04:05.123Z',
    `timestamptz is ${show(rows[0][3])}`)
  return { fields: r.fields.map((f) => [f.name, f.dataTypeID]), rows }
}

async function stepExtended(client, side, table) {
  const ts = new Date(Date.UTC(2023, 5, 7, 8, 9, 10, 500))
  const text = "héllo 'quoted' \\ world"
  const raw = Buffer.from([0, 1, 0xfe, 0xff])
  const r = await client.query({
    text: 'SELECT $1::int + 1 AS i, $2::text AS t, $3::numeric AS n, $4::timestamptz AS ts, ' +
      '$5::bool AS b, $6::text AS nul, $7::bytea AS raw, $8::jsonb AS doc',
    values: [41, text, '12345.6789', ts, true, null, raw, JSON.stringify({ k: [1, 'two', null] })],
    rowMode: 'array',
  })
  const row = r.rows[0]
  const want = [42, text, '12345.6789', ts, true, null, raw, { k: [1, 'two', null] }]
  expect(same(row, want), `result ${show(row)}, want ${show(want)}`)
  const c = await client.query(`SELECT count(*)::int AS n FROM ${ident(table)} WHERE side = $1`, [side])
  return { fields: r.fields.map((f) => [f.name, f.dataTypeID]), row, count: c.rows[0].n }
}

async function stepWrite(client, side, table) {
  const t = ident(table)
  let inserted = 0
  for (let i = 1; i <= 10; i++) {
    const r = await client.query(
      `INSERT INTO ${t} (side, id, name, amount, created, flag, payload, doc) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [side, i, `name ${i}`, String(i / 4), new Date(Date.UTC(2024, 0, 1 + i)), i % 2 === 0,
        Buffer.alloc(3, i % 256), JSON.stringify({ i })])
    inserted += r.rowCount
  }
  const r2 = await client.query(`INSERT INTO ${t} (side, id, name) VALUES ($1, $2, $3), ($4, $5, $6)`,
    [side, 11, 'eleven', side, 12, 'twelve'])
  const up = await client.query(`UPDATE ${t} SET name = name || $1 WHERE side = $2 AND id <= $3`,
    [' (updated)', side, 7])
  const del = await client.query(`DELETE FROM ${t} WHERE side = $1 AND id > $2`, [side, 9])
  const left = await client.query({
    text: `SELECT id, name, amount, flag, payload, doc FROM ${t} WHERE side = $1 ORDER BY id`,
    values: [side],
    rowMode: 'array',
  })
  const counts = [inserted, r2.rowCount, up.rowCount, del.rowCount, left.rows.length]
  expect(same(counts, [10, 2, 7, 3, 9]), `counts insert/insert/update/delete/left = ${show(counts)}, want [10,2,7,3,9]`)
  return { counts, left: left.rows }
}

const COPY_OUT_SQL = 'COPY (SELECT g, md5(g::text), (g * 0.5)::numeric, g % 7 = 0, ' +
  "CASE WHEN g % 5 = 0 THEN NULL ELSE 'tab\there ' || g END " +
  'FROM generate_series(1, 5000) AS g ORDER BY g) TO STDOUT'

async function stepCopyOut(client) {
  const chunks = []
  const stream = client.query(copyStreams.to(COPY_OUT_SQL))
  for await (const chunk of stream) chunks.push(chunk)
  const data = Buffer.concat(chunks)
  let lines = 0
  for (const b of data) if (b === 10) lines++
  expect(lines === 5000, `${lines} lines, want 5000`)
  const first = '1\tc4ca4238a0b923820dcc509a6f75849b\t0.5\tf\ttab\\there 1\n'
  expect(data.subarray(0, first.length).toString() === first, `first line ${show(data.subarray(0, 60).toString())}`)
  return { bytes: data.length, sha256: crypto.createHash('sha256').update(data).digest('hex') }
}

async function stepCopyIn(client, side, table) {
  const t = ident(table)
  function* lines() {
    for (let i = 10000; i < 12000; i++) {
      // COPY text format: a tab inside a value is written as \t
      yield `${side}\t${i}\tcopied\\t${i}\t${(i / 100).toFixed(2)}\t${i % 3 === 0 ? 't' : 'f'}\n`
    }
  }
  await pipeline(Readable.from(lines()), client.query(copyStreams.from(`COPY ${t} (side, id, name, amount, flag) FROM STDIN`)))
  const r = await client.query({
    text: `SELECT count(*), sum(id), sum(amount), count(*) FILTER (WHERE flag) FROM ${t} WHERE side = $1 AND id >= 10000`,
    values: [side],
    rowMode: 'array',
  })
  const got = r.rows[0]
  expect(got[0] === '2000', `${got[0]} rows after COPY, want 2000`)
  return got
}

async function stepPrepared(client) {
  let total = 0
  for (let i = 1; i <= 1000; i++) {
    const r = await client.query({ name: 'scen_double', text: 'SELECT $1::int * 2 AS v', values: [i] })
    total += r.rows[0].v
  }
  const p = await client.query("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = 'scen_double'")
  const prepared = p.rows[0].n
  expect(total === 1001000, `sum ${total}, want 1001000`)
  expect(prepared === 1, `${prepared} server-side statements named scen_double, want 1`)
  return { total, prepared }
}

async function stepCancel(client, side, table, dsn) {
  const q = new pg.Query('SELECT pg_sleep(30)')
  const outcome = new Promise((resolve) => {
    q.on('error', (err) => resolve({ err }))
    q.on('end', () => resolve({}))
  })
  const t0 = Date.now()
  client.query(q) // a Submittable: client.query returns it and reports through its events
  let cancelErr = null
  const timer = setTimeout(() => {
    // pg's own cancel path: a fresh Client opens a new connection to the same
    // host/port and sends CancelRequest(client.processID, client.secretKey).
    const canceller = new pg.Client(clientConfig(dsn))
    canceller.connection.on('error', (err) => { cancelErr = err })
    canceller.cancel(client, q)
  }, 500)
  const { err } = await outcome
  clearTimeout(timer)
  const elapsed = (Date.now() - t0) / 1000
  expect(err, `pg_sleep(30) finished without being cancelled${cancelErr ? ` (cancel: ${cancelErr.message})` : ''}`)
  expect(err.code === '57014', `error ${err.code}: ${err.message}`)
  expect(elapsed < 5, `cancel took ${elapsed.toFixed(1)} s`)
  const r = await client.query('SELECT 1 AS one')
  expect(r.rows[0].one === 1, 'SELECT 1 after cancel failed')
  return { code: err.code, message: err.message }
}

async function stepError(client) {
  let err = null
  try {
    await client.query('SELECT 1/0')
  } catch (e) {
    err = e
  }
  expect(err, 'SELECT 1/0 succeeded')
  expect(err.code === '22012', `error ${err.code}: ${err.message}`)
  const r = await client.query('SELECT 1 AS one')
  expect(r.rows[0].one === 1, 'SELECT 1 after the error failed')
  const r2 = await client.query('SELECT $1::int AS v', [7])
  expect(r2.rows[0].v === 7, 'parameterised query after the error failed')
  return { code: err.code, message: err.message }
}

const STEPS = [
  ['a-simple-query', stepSimple],
  ['b-extended-query', stepExtended],
  ['c-write', stepWrite],
  ['d-copy-out', stepCopyOut],
  ['e-copy-in', stepCopyIn],
  ['f-prepared', stepPrepared],
  ['g-cancel', stepCancel],
  ['h-error', stepError],
]

// ---------------------------------------------------------------- plumbing

function withTimeout(promise, seconds) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new StepTimeout()), seconds * 1000)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function short(e) {
  const first = String(e && e.message ? e.message : e).split('\n')[0]
  return `${e && e.constructor ? e.constructor.name : 'Error'}${e && e.code ? ` [${e.code}]` : ''}: ${first}`
}

function destroy(client) {
  if (!client) return
  try {
    client.connection.stream.destroy()
  } catch {}
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const dsns = { direct: args.direct, via: args.via }
  const table = `scen_${process.pid}_${crypto.randomBytes(3).toString('hex')}`
  const clients = {}
  let setup = null
  let passed = 0
  let failed = 0

  const cleanup = async () => {
    for (const side of SIDES) if (clients[side]) destroy(clients[side])
    try {
      if (!setup) setup = await connect(args.direct)
      await withTimeout(setup.query(`DROP TABLE IF EXISTS ${ident(table)}`), 30)
      await setup.end()
    } catch (e) {
      failed++
      console.log(`FAIL cleanup: could not drop ${table}: ${short(e)}`)
    }
  }
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      setup = null
      await cleanup()
      process.exit(130)
    })
  }

  try {
    setup = await connect(args.direct)
    await setup.query(`CREATE TABLE ${ident(table)} (side text NOT NULL, id int NOT NULL, name text, amount numeric, ` +
      'created timestamptz, flag bool, payload bytea, doc json, PRIMARY KEY (side, id))')

    for (const [name, fn] of STEPS) {
      const obs = {}
      const why = []
      for (const side of SIDES) {
        try {
          if (!clients[side]) clients[side] = await withTimeout(connect(dsns[side]), 15)
          obs[side] = await withTimeout(fn(clients[side], side, table, dsns[side]), args.stepTimeout)
        } catch (e) {
          if (e instanceof StepTimeout) {
            why.push(`${side}: no answer within ${args.stepTimeout} s`)
            destroy(clients[side]) // unknown protocol state: start afresh
            clients[side] = null
          } else if (e instanceof Check) {
            why.push(`${side}: ${e.message}`)
          } else {
            why.push(`${side}: ${short(e)}`)
            if (clients[side] && (clients[side]._ending || !clients[side]._connected)) clients[side] = null
          }
        }
      }
      if (why.length === 0 && !same(obs.direct, obs.via)) {
        why.push(`direct and via differ: direct=${show(obs.direct)} via=${show(obs.via)}`)
      }
      if (why.length) {
        failed++
        console.log(`FAIL ${name}: ${why.join('; ')}`)
      } else {
        passed++
        console.log(`ok ${name}`)
      }
    }
  } catch (e) {
    failed++
    console.log(`FAIL setup: ${short(e)}`)
  } finally {
    for (const side of SIDES) {
      if (clients[side]) {
        try {
          await withTimeout(clients[side].end(), 5)
        } catch {
          destroy(clients[side])
        }
        clients[side] = null
      }
    }
    await cleanup()
  }
  console.log(`${passed} passed, ${failed} failed`)
  process.exit(failed === 0 ? 0 : 1)
}

main()
