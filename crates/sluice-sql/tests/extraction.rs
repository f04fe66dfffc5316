//! Table-driven tests for what the classifier extracts: tables read and
//! written, functions, case folding, CTE scoping, nested sub-selects, and
//! the kind of each statement family.

use sluice_sql::{Classifier, PgStringMode, SqlClassification, StatementKind};

fn classify(sql: &str) -> std::sync::Arc<SqlClassification> {
    Classifier::new(0).classify_postgres(sql, PgStringMode::default())
}

struct Names {
    sql: &'static str,
    read: &'static [&'static str],
    written: &'static [&'static str],
    functions: &'static [&'static str],
}

const NAMES: &[Names] = &[
    Names { sql: "SELECT * FROM patients", read: &["patients"], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM Patients", read: &["patients"], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM \"Patients\"", read: &["Patients"], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM Public.\"Patients\"", read: &["public.Patients"], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM db.s.t", read: &["db.s.t"], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM \"my table\"", read: &["\"my table\""], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM \"q\"\"t\"", read: &["\"q\"\"t\""], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM a, a, b", read: &["a", "b"], written: &[], functions: &[] },
    Names { sql: "SELECT * FROM b JOIN a ON true", read: &["a", "b"], written: &[], functions: &[] },
    Names {
        sql: "SELECT (SELECT max(x) FROM b), EXISTS (SELECT 1 FROM c) FROM a WHERE y IN (SELECT y FROM d)",
        read: &["a", "b", "c", "d"],
        written: &[],
        functions: &["max"],
    },
    Names {
        sql: "SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM deep) x) y) z",
        read: &["deep"],
        written: &[],
        functions: &[],
    },
    Names {
        sql: "SELECT * FROM a LEFT JOIN LATERAL (SELECT * FROM b WHERE b.id = a.id) s ON true",
        read: &["a", "b"],
        written: &[],
        functions: &[],
    },
    Names {
        sql: "SELECT * FROM a UNION SELECT * FROM b EXCEPT SELECT * FROM c",
        read: &["a", "b", "c"],
        written: &[],
        functions: &[],
    },
    Names { sql: "TABLE patients", read: &["patients"], written: &[], functions: &[] },
    Names { sql: "VALUES (1, lower('X'))", read: &[], written: &[], functions: &["lower"] },
    // CTEs.
    Names { sql: "WITH x AS (SELECT * FROM a) SELECT * FROM x", read: &["a"], written: &[], functions: &[] },
    Names { sql: "WITH a AS (SELECT * FROM a) SELECT * FROM a", read: &["a"], written: &[], functions: &[] },
    Names {
        sql: "WITH x AS (SELECT 1), y AS (SELECT * FROM x) SELECT * FROM y",
        read: &[],
        written: &[],
        functions: &[],
    },
    Names {
        sql: "WITH y AS (SELECT * FROM x), x AS (SELECT 1) SELECT * FROM y",
        read: &["x"],
        written: &[],
        functions: &[],
    },
    Names {
        sql: "WITH RECURSIVE y AS (SELECT * FROM x), x AS (SELECT 1) SELECT * FROM y",
        read: &[],
        written: &[],
        functions: &[],
    },
    Names {
        sql: "SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x",
        read: &["x"],
        written: &[],
        functions: &[],
    },
    Names { sql: "WITH \"X\" AS (SELECT 1) SELECT * FROM x", read: &["x"], written: &[], functions: &[] },
    Names { sql: "WITH x AS (SELECT 1) SELECT * FROM s.x", read: &["s.x"], written: &[], functions: &[] },
    Names { sql: "WITH x AS (SELECT 1) INSERT INTO x SELECT * FROM x", read: &[], written: &["x"], functions: &[] },
    // Writes.
    Names { sql: "INSERT INTO a SELECT * FROM b", read: &["b"], written: &["a"], functions: &[] },
    Names { sql: "INSERT INTO a VALUES (1) RETURNING *", read: &["a"], written: &["a"], functions: &[] },
    Names { sql: "UPDATE a SET x = b.x FROM b WHERE a.id = b.id", read: &["a", "b"], written: &["a"], functions: &[] },
    Names { sql: "DELETE FROM a USING b WHERE a.id = b.id", read: &["a", "b"], written: &["a"], functions: &[] },
    Names {
        sql: "MERGE INTO a USING b ON a.id = b.id WHEN MATCHED THEN UPDATE SET x = 1 WHEN NOT MATCHED THEN INSERT VALUES (1)",
        read: &["a", "b"],
        written: &["a"],
        functions: &[],
    },
    Names { sql: "COPY a FROM STDIN", read: &[], written: &["a"], functions: &[] },
    Names {
        sql: "COPY (SELECT * FROM a JOIN b USING (id)) TO STDOUT",
        read: &["a", "b"],
        written: &[],
        functions: &[],
    },
    Names { sql: "TRUNCATE a, s.b", read: &[], written: &["a", "s.b"], functions: &[] },
    Names { sql: "LOCK a, b", read: &[], written: &["a", "b"], functions: &[] },
    // DDL.
    Names { sql: "CREATE TABLE s.t (id int REFERENCES p (id))", read: &["p"], written: &["s.t"], functions: &[] },
    Names { sql: "CREATE INDEX i ON t (lower(name))", read: &[], written: &["t"], functions: &["lower"] },
    Names { sql: "CREATE VIEW v AS SELECT * FROM a", read: &["a"], written: &["v"], functions: &[] },
    Names { sql: "ALTER TABLE a RENAME TO b", read: &[], written: &["a"], functions: &[] },
    Names {
        sql: "ALTER TABLE a ADD COLUMN c int DEFAULT nextval('s')",
        read: &[],
        written: &["a"],
        functions: &["nextval"],
    },
    Names { sql: "DROP VIEW v1, s.v2", read: &[], written: &["s.v2", "v1"], functions: &[] },
    Names { sql: "COMMENT ON TABLE s.t IS 'x'", read: &[], written: &["s.t"], functions: &[] },
    Names { sql: "ANALYZE a, b", read: &["a", "b"], written: &[], functions: &[] },
    Names { sql: "VACUUM a", read: &[], written: &["a"], functions: &[] },
    Names { sql: "REFRESH MATERIALIZED VIEW mv", read: &[], written: &["mv"], functions: &[] },
    // Functions.
    Names {
        sql: "SELECT now(), LOWER(x), \"Upper\"(y), s.f(z) FROM t",
        read: &["t"],
        written: &[],
        functions: &["lower", "now", "s.f", "Upper"],
    },
    Names {
        sql: "SELECT count(*) FILTER (WHERE a > avg(b)) OVER (ORDER BY c) FROM t",
        read: &["t"],
        written: &[],
        functions: &["avg", "count"],
    },
    Names { sql: "SELECT * FROM generate_series(1, 3) g", read: &[], written: &[], functions: &["generate_series"] },
    Names { sql: "SELECT extract(year FROM d) FROM t", read: &["t"], written: &[], functions: &["pg_catalog.extract"] },
    Names { sql: "SELECT f(a => g(1)) FROM t", read: &["t"], written: &[], functions: &["f", "g"] },
    Names { sql: "PREPARE p AS SELECT f() FROM t", read: &["t"], written: &[], functions: &["f"] },
    Names { sql: "DECLARE c CURSOR FOR SELECT * FROM t", read: &["t"], written: &[], functions: &[] },
    Names { sql: "EXPLAIN SELECT * FROM t", read: &["t"], written: &[], functions: &[] },
    Names { sql: "EXPLAIN UPDATE t SET a = 1", read: &["t"], written: &[], functions: &[] },
];

#[test]
fn tables_and_functions() {
    let mut failures = Vec::new();
    for case in NAMES {
        let got = classify(case.sql);
        let want = |v: &[&str]| {
            let mut v: Vec<String> = v.iter().map(|s| (*s).to_owned()).collect();
            v.sort();
            v
        };
        if got.tables_read != want(case.read)
            || got.tables_written != want(case.written)
            || got.functions != want(case.functions)
        {
            failures.push(format!(
                "{}\n    read {:?} written {:?} functions {:?}\n    want read {:?} written {:?} functions {:?}",
                case.sql, got.tables_read, got.tables_written, got.functions, case.read, case.written, case.functions
            ));
        }
        if got.kind == StatementKind::Admin {
            failures.push(format!("{} is Admin: {got:?}", case.sql));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const KINDS: &[(&str, StatementKind)] = &[
    ("SELECT 1", StatementKind::Read),
    ("SHOW ALL", StatementKind::Read),
    ("EXPLAIN SELECT 1", StatementKind::Read),
    ("EXPLAIN ANALYZE SELECT 1", StatementKind::Read),
    ("BEGIN", StatementKind::Transaction),
    ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY", StatementKind::Transaction),
    ("COMMIT AND CHAIN", StatementKind::Transaction),
    ("ROLLBACK TO SAVEPOINT a", StatementKind::Transaction),
    ("SAVEPOINT a", StatementKind::Transaction),
    ("RELEASE SAVEPOINT a", StatementKind::Transaction),
    ("SET CONSTRAINTS ALL DEFERRED", StatementKind::Transaction),
    ("SET search_path TO public, pg_temp", StatementKind::Session),
    ("SET SCHEMA 'public'", StatementKind::Session),
    ("SET application_name = 'x'", StatementKind::Session),
    ("SET TIME ZONE 'UTC'", StatementKind::Session),
    ("SET LOCAL lock_timeout = 100", StatementKind::Session),
    ("RESET statement_timeout", StatementKind::Session),
    ("RESET ALL", StatementKind::Session),
    ("SET NAMES 'UTF8'", StatementKind::Session),
    ("SET client_encoding TO 'utf-8'", StatementKind::Session),
    ("SET client_encoding TO DEFAULT", StatementKind::Session),
    ("SET TRANSACTION READ ONLY", StatementKind::Session),
    ("SET extra_float_digits = 3", StatementKind::Session),
    ("SET IntervalStyle = 'iso_8601'", StatementKind::Session),
    ("SET work_mem = '1GB'", StatementKind::Admin),
    ("SET session_replication_role = replica", StatementKind::Admin),
    ("SET row_security = off", StatementKind::Admin),
    ("SET client_encoding = 'LATIN1'", StatementKind::Admin),
    ("LISTEN x", StatementKind::Utility),
    ("UNLISTEN *", StatementKind::Utility),
    ("NOTIFY x, 'payload'", StatementKind::Utility),
    ("DISCARD PLANS", StatementKind::Utility),
    ("DISCARD TEMP", StatementKind::Utility),
    ("DEALLOCATE ALL", StatementKind::Utility),
    ("CLOSE c", StatementKind::Utility),
    ("FETCH 10 FROM c", StatementKind::Utility),
    ("MOVE NEXT IN c", StatementKind::Utility),
    ("SELECT pg_notify('x', 'y')", StatementKind::Utility),
    ("INSERT INTO t VALUES (1)", StatementKind::Write),
    ("SELECT nextval('s')", StatementKind::Write),
    ("SELECT * FROM t FOR KEY SHARE", StatementKind::Write),
    ("CREATE TABLE t (a int)", StatementKind::Ddl),
    ("CREATE TEMP TABLE t (a int) ON COMMIT DROP", StatementKind::Ddl),
    ("CREATE TABLE p (a int) PARTITION BY RANGE (a)", StatementKind::Ddl),
    ("CREATE SEQUENCE s START 10", StatementKind::Ddl),
    ("CREATE TYPE mood AS ENUM ('a', 'b')", StatementKind::Ddl),
    ("CREATE TYPE pair AS (a int, b int)", StatementKind::Ddl),
    ("CREATE DOMAIN d AS int CHECK (VALUE > 0)", StatementKind::Ddl),
    ("CREATE SCHEMA s", StatementKind::Ddl),
    ("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0)", StatementKind::Ddl),
    ("ALTER TABLE t ALTER COLUMN a SET NOT NULL", StatementKind::Ddl),
    ("ALTER TABLE t SET SCHEMA s", StatementKind::Ddl),
    ("ALTER INDEX i RENAME TO j", StatementKind::Ddl),
    ("CLUSTER t USING i", StatementKind::Ddl),
    ("REINDEX TABLE t", StatementKind::Ddl),
    ("REINDEX DATABASE d", StatementKind::Admin),
    ("VACUUM t", StatementKind::Ddl),
    ("ANALYZE t", StatementKind::Utility),
    ("CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + 1'", StatementKind::Ddl),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql RETURN 1", StatementKind::Ddl),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END", StatementKind::Ddl),
    (
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql SET search_path = public AS $$ DECLARE r int; BEGIN SELECT count(*) INTO r FROM t; r := r + 1; RETURN r; END $$",
        StatementKind::Ddl,
    ),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = 'admin' AS 'SELECT 1'", StatementKind::Admin),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS 'return 1'", StatementKind::Admin),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql LEAKPROOF AS 'SELECT 1'", StatementKind::Admin),
    ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'GRANT ALL ON t TO public'", StatementKind::Admin),
    ("ALTER FUNCTION f() SET search_path = public", StatementKind::Ddl),
    ("ALTER FUNCTION f() SECURITY INVOKER", StatementKind::Ddl),
    ("DROP FUNCTION f(int)", StatementKind::Ddl),
    ("DROP EXTENSION pgcrypto", StatementKind::Admin),
    ("DROP POLICY p ON t", StatementKind::Admin),
    ("ALTER TABLE t ENABLE TRIGGER ALL", StatementKind::Admin),
    ("ALTER TABLE t NO FORCE ROW LEVEL SECURITY", StatementKind::Admin),
    ("CREATE ROLE r LOGIN", StatementKind::Admin),
    ("CREATE USER u PASSWORD 'x'", StatementKind::Admin),
    ("DROP ROLE r", StatementKind::Admin),
    ("ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO public", StatementKind::Admin),
    ("CREATE DATABASE d", StatementKind::Admin),
    ("ALTER DATABASE d SET search_path = x", StatementKind::Admin),
    ("CREATE PUBLICATION p FOR ALL TABLES", StatementKind::Admin),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", StatementKind::Admin),
    ("SECURITY LABEL ON TABLE t IS 'x'", StatementKind::Admin),
    ("PREPARE TRANSACTION 'x'", StatementKind::Admin),
    ("ROLLBACK PREPARED 'x'", StatementKind::Admin),
    ("ALTER ROLE r SET role = 'admin'", StatementKind::Admin),
    ("ALTER USER u WITH PASSWORD 'y'", StatementKind::Admin),
    ("DROP OWNED BY r", StatementKind::Admin),
    ("REASSIGN OWNED BY a TO b", StatementKind::Admin),
    ("ALTER TABLE t OWNER TO r", StatementKind::Admin),
    ("ALTER SCHEMA s OWNER TO r", StatementKind::Admin),
    ("ALTER ROLE r RENAME TO s", StatementKind::Admin),
    ("CREATE LANGUAGE plperlu", StatementKind::Admin),
    ("CREATE CAST (int AS text) WITH INOUT", StatementKind::Admin),
    ("CREATE TABLESPACE x LOCATION '/tmp'", StatementKind::Admin),
];

#[test]
fn kinds() {
    let mut failures = Vec::new();
    for (sql, want) in KINDS {
        let got = classify(sql);
        if got.kind != *want {
            failures.push(format!("{sql}: {:?}, want {want:?} ({got:?})", got.kind));
        }
        if got.flags.unparseable {
            failures.push(format!("{sql}: did not parse"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn multi_statement_takes_the_most_dangerous_kind() {
    let got = classify("SELECT 1; SET statement_timeout = 1; INSERT INTO t VALUES (1); BEGIN");
    assert_eq!(got.kind, StatementKind::Write);
    assert_eq!(got.statements, 4);
    assert!(got.flags.multi_statement);
    let one = classify("SELECT 1;;");
    assert_eq!(one.statements, 1);
    assert!(!one.flags.multi_statement);
}

#[test]
fn pure_read_only_for_flagless_reads() {
    assert!(classify("SELECT * FROM t").is_pure_read());
    assert!(!classify("SELECT 1; SELECT 2").is_pure_read());
    assert!(!classify("PREPARE p AS SELECT 1").is_pure_read());
    assert!(!classify("SELECT * FROM t FOR UPDATE").is_pure_read());
}

#[test]
fn fingerprint_ignores_constants_not_tables() {
    let a = classify("SELECT * FROM t WHERE id = 1");
    let b = classify("SELECT * FROM t WHERE id = 2");
    let c = classify("SELECT * FROM u WHERE id = 1");
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_ne!(a.fingerprint, c.fingerprint);
    assert_eq!(a.fingerprint.len(), 16);
}
