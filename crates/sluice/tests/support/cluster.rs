//! A throwaway PostgreSQL cluster owned by one test (initdb as the `postgres`
//! OS user in a temp dir, a free port on 127.0.0.1, TLS on), and the
//! openssl-made CA and server certificates it and the TLS tests use.
//!
//! Owns: creating, starting, stopping and removing that cluster, and making
//! certificates. Nothing about what is tested.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(command: &mut Command) -> Output {
    let shown = format!("{command:?}");
    let out = command.output().unwrap_or_else(|e| panic!("{shown}: {e}"));
    assert!(
        out.status.success(),
        "{shown} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A certificate authority made with the openssl CLI.
#[derive(Debug, Clone)]
pub struct Ca {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A leaf certificate and its (unencrypted, PKCS#8) key.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A new self-signed CA, `<dir>/<name>.crt` and `<dir>/<name>.key`.
    pub fn create(dir: &Path, name: &str) -> Ca {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", &format!("/CN=Sluice test CA {name}")])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert));
        Ca { cert, key }
    }

    /// A server certificate signed by this CA, with CN `sans[0]` and the
    /// given subject alternative names (`IP:127.0.0.1`, `DNS:localhost`).
    pub fn issue(&self, dir: &Path, name: &str, sans: &[&str]) -> Leaf {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let csr = dir.join(format!("{name}.csr"));
        let ext = dir.join(format!("{name}.ext"));
        let cn = sans[0].split_once(':').map_or(sans[0], |(_, v)| v);
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage=serverAuth\n",
                sans.join(",")
            ),
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-subj", &format!("/CN={cn}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr));
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", &format!("{}", rand::random::<u32>())])
            .arg("-in")
            .arg(&csr)
            .arg("-CA")
            .arg(&self.cert)
            .arg("-CAkey")
            .arg(&self.key)
            .arg("-extfile")
            .arg(&ext)
            .arg("-out")
            .arg(&cert));
        Leaf { cert, key }
    }
}

/// The PostgreSQL binaries: the highest version under /usr/lib/postgresql.
pub fn pg_bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().expect("an initdb under /usr/lib/postgresql/<version>/bin").1
}

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A private PostgreSQL cluster: stopped (`-m immediate`) and removed on drop.
#[derive(Debug)]
pub struct Cluster {
    /// Owned by `postgres`; holds the data dir, the socket, the log and the TLS files.
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The CA that signed the server certificate (for `verify-full`).
    pub ca: Ca,
    bin: PathBuf,
    running: bool,
}

impl Cluster {
    /// initdb, TLS on with a certificate for `127.0.0.1` signed by a fresh CA,
    /// `pg_hba.conf` as given, started and accepting connections.
    pub fn start(pg_hba: &str) -> Cluster {
        let bin = pg_bin_dir();
        // Under /tmp, not $TMPDIR: the postgres user must reach it, and the
        // socket path must stay short.
        let dir = tempfile::Builder::new().prefix("sluice_pg").tempdir_in("/tmp").unwrap();
        let ca = Ca::create(dir.path(), "cluster_ca");
        let leaf = ca.issue(dir.path(), "server", &["IP:127.0.0.1"]);
        run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(dir.path()));
        run(Command::new("chmod").arg("0600").arg(&leaf.key));
        let data = dir.path().join("data");
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(bin.join("initdb"))
            .args(["--no-sync", "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "-D"])
            .arg(&data));
        std::fs::write(data.join("pg_hba.conf"), pg_hba).unwrap();
        let mut cluster = Cluster { dir, port: 0, ca, bin, running: false };
        // The port was free a moment ago; if something took it since, try another.
        for attempt in 0.. {
            cluster.port = free_port();
            let conf = format!(
                "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
                 ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n\
                 max_connections = 40\nlog_connections = on\n",
                cluster.port,
                cluster.dir.path().display(),
                leaf.cert.display(),
                leaf.key.display()
            );
            // Written as a whole file included last, so a retry replaces the port.
            std::fs::write(data.join("sluice_test.conf"), conf).unwrap();
            if attempt == 0 {
                let mut main = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
                main.push_str("\ninclude 'sluice_test.conf'\n");
                std::fs::write(data.join("postgresql.conf"), main).unwrap();
            }
            run(Command::new("chown").arg("-R").arg("postgres:postgres").arg(&data));
            let out = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(cluster.bin.join("pg_ctl"))
                .args(["-w", "-t", "60", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(cluster.log_path())
                .arg("start")
                .output()
                .unwrap();
            if out.status.success() {
                cluster.running = true;
                break;
            }
            assert!(
                attempt < 3 && cluster.log().contains("could not bind"),
                "pg_ctl start failed:\n{}\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                cluster.log()
            );
        }
        cluster
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }

    /// The server log (with `log_connections = on`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs SQL as the superuser over the Unix socket; returns psql's unaligned output.
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = run(Command::new("psql")
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-h"])
            .arg(self.dir.path())
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql]));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits (bounded) until the server log contains `needle`; the log is
    /// written by the backend, so a line may land just after the client returns.
    pub fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["-w", "-m", "immediate", "-D"])
                .arg(self.dir.path().join("data"))
                .arg("stop")
                .output();
        }
        // The TempDir removes everything when it drops, right after this.
    }
}
