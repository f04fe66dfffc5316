#!/usr/bin/env python3
"""Runs one query with psycopg 3, in text and in binary result format, and
prints the rows as JSON, for tests that check what a client receives.

Usage:
    python3 tests/clients/pg_rows.py DSN SQL

Prints {"text": [[...], ...], "binary": [[...], ...]}: each value as psycopg
loaded it, dates and times in ISO format, None for NULL. On an error prints
{"error": {"sqlstate": ..., "message": ...}} and exits 1. The query runs
once per format, each in its own transaction.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import sys

import psycopg


def plain(value):
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def main() -> int:
    dsn, sql = sys.argv[1], sys.argv[2]
    result = {}
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name, binary in (("text", False), ("binary", True)):
                with conn.cursor(binary=binary) as cur:
                    cur.execute(sql)
                    result[name] = [[plain(v) for v in row] for row in cur.fetchall()]
    except psycopg.Error as e:
        print(json.dumps({"error": {"sqlstate": e.sqlstate, "message": str(e)}}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
