#!/usr/bin/env python3
"""Client scenario with psycopg 3: the same steps straight to PostgreSQL and through Sluice.

Usage:
    python3 tests/clients/pg_scenario.py --direct DSN --via DSN

DIRECT is a libpq DSN (URI or key=value string) straight to PostgreSQL; VIA is a
DSN to Sluice (database = the connection name, password = the token, e.g.
postgresql://agent:TOKEN@127.0.0.1:15432/patients?sslmode=disable).
Both must reach the same database: the script creates one table
scen_<pid>_<random> on the DIRECT side, both sides read and write only that
table (each its own rows, told apart by the column `side`), and the table is
dropped at the end on the DIRECT side, whatever happens. Until Sluice runs,
DIRECT=VIA (both direct) must pass.

Steps, each run on both sides and compared (and checked against what is expected):
    a simple-query    several rows and types over the simple query protocol
    b extended-query  parameters (text and binary results) over the extended protocol
    c write           INSERT (executemany, pipelined) / UPDATE / DELETE row counts
    d copy-out        COPY (SELECT ...) TO STDOUT of 5000 rows, byte for byte
    e copy-in         COPY ... FROM STDIN of 2000 rows, then count
    f prepared        one server-side prepared statement executed 1000 times
    g cancel          conn.cancel() on SELECT pg_sleep(30) after 0.5 s -> 57014, session lives
    h error           SELECT 1/0 -> 22012, session lives

Prints `ok <step>` or `FAIL <step>: <why>` per step, then `N passed, M failed`;
exits 0 only if every step passed. Options: --step-timeout SECONDS (default 60)
bounds each step on each side.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import signal
import sys
import threading
import time
from decimal import Decimal

import psycopg
from psycopg import errors, sql
from psycopg.types.json import Jsonb

SIDES = ("direct", "via")


class StepTimeout(Exception):
    pass


class Check(Exception):
    """A side's result is not what the step expects."""


def expect(cond: bool, why: str) -> None:
    if not cond:
        raise Check(why)


# ---------------------------------------------------------------- the steps
# Each step is step(conn, side, table) -> an observation that must be equal on
# both sides. It raises Check (or a psycopg error) when the side itself is wrong.

SIMPLE_SQL = """
SELECT g AS n,
       'row ' || g AS label,
       (g * 1.25)::numeric(10, 2) AS amount,
       timestamptz '2024-01-02 03:04:05.123456+00' + g * interval '1 hour' AS ts,
       g % 2 = 0 AS even,
       CASE WHEN g % 3 = 0 THEN NULL ELSE g END AS maybe,
       decode(lpad(to_hex(g), 2, '0') || 'ff00', 'hex') AS raw,
       json_build_object('n', g, 'tags', json_build_array('a', g)) AS doc
FROM generate_series(1, 5) AS g
ORDER BY g
"""


def describe(cur) -> list:
    return [(c.name, c.type_code) for c in cur.description]


def step_simple(conn, side, table):
    with conn.cursor() as cur:
        cur.execute(SIMPLE_SQL)  # no parameters: psycopg uses the simple query protocol
        rows = cur.fetchall()
        cols = describe(cur)
    expect(len(rows) == 5, f"{len(rows)} rows, want 5")
    expect(rows[0][1] == "row 1" and rows[0][2] == Decimal("1.25"), f"row 1 is {rows[0]!r}")
    expect(rows[2][5] is None, "NULL did not come back as None")
    expect(bytes(rows[0][6]) == b"\x01\xff\x00", f"bytea is {rows[0][6]!r}")
    expect(rows[1][7] == {"n": 2, "tags": ["a", 2]}, f"json is {rows[1][7]!r}")
    expect(rows[0][3] == dt.datetime(2024, 1, 2, 4, 4, 5, 123456, tzinfo=dt.timezone.utc),
           f"timestamptz is {rows[0][3]!r}")
    return cols, [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]


EXT_SQL = ("SELECT %s::int + 1 AS i, %s::text AS t, %s::numeric AS n, %s::timestamptz AS ts, "
           "%s::bool AS b, %s::text AS nul, %s::bytea AS raw, %s::jsonb AS doc")


def step_extended(conn, side, table):
    ts = dt.datetime(2023, 6, 7, 8, 9, 10, 500, tzinfo=dt.timezone.utc)
    params = (41, "héllo 'quoted' \\ world", Decimal("12345.6789"), ts, True, None,
              b"\x00\x01\xfe\xff", Jsonb({"k": [1, "two", None]}))
    want = (42, "héllo 'quoted' \\ world", Decimal("12345.6789"), ts, True, None,
            b"\x00\x01\xfe\xff", {"k": [1, "two", None]})
    out = []
    for binary in (False, True):
        with conn.cursor(binary=binary) as cur:
            cur.execute(EXT_SQL, params)
            row = tuple(bytes(v) if isinstance(v, memoryview) else v for v in cur.fetchone())
            expect(row == want, f"{'binary' if binary else 'text'} result {row!r}, want {want!r}")
            out.append((describe(cur), row))
        # a parameterised read of the scenario table (empty for this side so far)
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {} WHERE side = %s").format(sql.Identifier(table)),
                        (side,))
            out.append(cur.fetchone()[0])
    return out


def step_write(conn, side, table):
    t = sql.Identifier(table)
    rows = [(side, i, f"name {i}", Decimal(i) / 4, dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
             + dt.timedelta(days=i), i % 2 == 0, bytes([i % 256]) * 3, json.dumps({"i": i}))
            for i in range(1, 11)]
    with conn.cursor() as cur:
        cur.executemany(sql.SQL("INSERT INTO {} (side, id, name, amount, created, flag, payload, doc) "
                                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)").format(t), rows)
        inserted = cur.rowcount
        cur.execute(sql.SQL("INSERT INTO {} (side, id, name) VALUES (%s, %s, %s), (%s, %s, %s)").format(t),
                    (side, 11, "eleven", side, 12, "twelve"))
        inserted2 = cur.rowcount
        cur.execute(sql.SQL("UPDATE {} SET name = name || %s WHERE side = %s AND id <= %s").format(t),
                    (" (updated)", side, 7))
        updated = cur.rowcount
        cur.execute(sql.SQL("DELETE FROM {} WHERE side = %s AND id > %s").format(t), (side, 9))
        deleted = cur.rowcount
        cur.execute(sql.SQL("SELECT id, name, amount, flag, payload, doc FROM {} WHERE side = %s ORDER BY id")
                    .format(t), (side,))
        left = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in cur.fetchall()]
    counts = (inserted, inserted2, updated, deleted, len(left))
    expect(counts == (10, 2, 7, 3, 9), f"counts insert/insert/update/delete/left = {counts}, want (10, 2, 7, 3, 9)")
    return counts, left


COPY_OUT_SQL = ("COPY (SELECT g, md5(g::text), (g * 0.5)::numeric, g % 7 = 0, "
                "CASE WHEN g % 5 = 0 THEN NULL ELSE 'tab\there ' || g END "
                "FROM generate_series(1, 5000) AS g ORDER BY g) TO STDOUT")


def step_copy_out(conn, side, table):
    buf = bytearray()
    with conn.cursor() as cur:
        with cur.copy(COPY_OUT_SQL) as copy:
            for chunk in copy:
                buf += chunk
    data = bytes(buf)
    lines = data.count(b"\n")
    expect(lines == 5000, f"{lines} lines, want 5000")
    expect(data.startswith(b"1\tc4ca4238a0b923820dcc509a6f75849b\t0.5\tf\ttab\\there 1\n"),
           f"first line {data[:60]!r}")
    return len(data), hashlib.sha256(data).hexdigest()


def step_copy_in(conn, side, table):
    t = sql.Identifier(table)
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} (side, id, name, amount, flag) FROM STDIN").format(t)) as copy:
            for i in range(10000, 12000):
                copy.write_row((side, i, f"copied\t{i}", Decimal(i) / 100, i % 3 == 0))
        cur.execute(sql.SQL("SELECT count(*), sum(id), sum(amount), count(*) FILTER (WHERE flag) FROM {} "
                            "WHERE side = %s AND id >= 10000").format(t), (side,))
        got = cur.fetchone()
    expect(got[0] == 2000, f"{got[0]} rows after COPY, want 2000")
    return got


def step_prepared(conn, side, table):
    total = 0
    with conn.cursor() as cur:
        for i in range(1, 1001):
            cur.execute("SELECT %s::int * 2", (i,), prepare=True)
            total += cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
                    ("SELECT $1::int * 2",))
        prepared = cur.fetchone()[0]
    expect(total == 1001000, f"sum {total}, want 1001000")
    expect(prepared == 1, f"{prepared} server-side prepared statements for the query, want 1")
    return total, prepared


def step_cancel(conn, side, table):
    timer = threading.Timer(0.5, conn.cancel)
    t0 = time.monotonic()
    timer.start()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_sleep(30)")
        raise Check("pg_sleep(30) finished without being cancelled")
    except errors.QueryCanceled as exc:
        elapsed = time.monotonic() - t0
        state, msg = exc.sqlstate, exc.diag.message_primary
    finally:
        timer.cancel()
    expect(state == "57014", f"sqlstate {state}")
    expect(elapsed < 5.0, f"cancel took {elapsed:.1f} s")
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        expect(cur.fetchone() == (1,), "SELECT 1 after cancel failed")
    return state, msg


def step_error(conn, side, table):
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1/0")
        raise Check("SELECT 1/0 succeeded")
    except errors.DivisionByZero as exc:
        state, msg = exc.sqlstate, exc.diag.message_primary
    expect(state == "22012", f"sqlstate {state}")
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        expect(cur.fetchone() == (1,), "SELECT 1 after the error failed")
        cur.execute("SELECT %s::int", (7,))
        expect(cur.fetchone() == (7,), "extended query after the error failed")
    return state, msg


STEPS = [
    ("a-simple-query", step_simple),
    ("b-extended-query", step_extended),
    ("c-write", step_write),
    ("d-copy-out", step_copy_out),
    ("e-copy-in", step_copy_in),
    ("f-prepared", step_prepared),
    ("g-cancel", step_cancel),
    ("h-error", step_error),
]


# ---------------------------------------------------------------- plumbing

def connect(dsn: str):
    return psycopg.connect(dsn, autocommit=True, connect_timeout=10)


def on_alarm(signum, frame):
    raise StepTimeout()


def short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    state = getattr(exc, "sqlstate", None)
    return f"{type(exc).__name__}{f' [{state}]' if state else ''}: {text}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--direct", required=True, help="DSN straight to PostgreSQL")
    ap.add_argument("--via", required=True, help="DSN through Sluice")
    ap.add_argument("--step-timeout", type=int, default=60)
    args = ap.parse_args()
    dsns = {"direct": args.direct, "via": args.via}

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    table = f"scen_{os.getpid()}_{random.randrange(16**6):06x}"
    passed = failed = 0
    conns: dict = {}
    setup = None
    try:
        setup = connect(args.direct)
        setup.execute(sql.SQL(
            "CREATE TABLE {} (side text NOT NULL, id int NOT NULL, name text, amount numeric, "
            "created timestamptz, flag bool, payload bytea, doc json, PRIMARY KEY (side, id))"
        ).format(sql.Identifier(table)))

        for name, fn in STEPS:
            obs, why = {}, []
            for side in SIDES:
                try:
                    if conns.get(side) is None or conns[side].closed:
                        conns[side] = None
                        conns[side] = connect(dsns[side])
                    signal.alarm(args.step_timeout)
                    try:
                        obs[side] = fn(conns[side], side, table)
                    finally:
                        signal.alarm(0)
                except StepTimeout:
                    why.append(f"{side}: no answer within {args.step_timeout} s")
                    if conns.get(side) is not None:
                        conns[side].close()  # unknown protocol state: start afresh
                except Check as exc:
                    why.append(f"{side}: {exc}")
                except Exception as exc:  # noqa: BLE001 - any client error is a step failure
                    why.append(f"{side}: {short(exc)}")
            if not why and obs["direct"] != obs["via"]:
                why.append(f"direct and via differ: direct={obs['direct']!r:.300} via={obs['via']!r:.300}")
            if why:
                failed += 1
                print(f"FAIL {name}: {'; '.join(why)}", flush=True)
            else:
                passed += 1
                print(f"ok {name}", flush=True)
    except Exception as exc:  # noqa: BLE001 - setup failure
        failed += 1
        print(f"FAIL setup: {short(exc)}", flush=True)
    finally:
        signal.alarm(0)
        for c in conns.values():
            if c is not None:
                c.close()
        try:
            if setup is None or setup.closed:
                setup = connect(args.direct)
            setup.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
            setup.close()
        except Exception as exc:  # noqa: BLE001
            failed += 1
            print(f"FAIL cleanup: could not drop {table}: {short(exc)}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
