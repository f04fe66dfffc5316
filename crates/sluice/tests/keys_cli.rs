//! `sluice keys generate`: the key file is private (0600), its public key
//! sits beside it, both read back as the same key, and an existing file is
//! never overwritten.

use sluice_evidence::{SigningKey, VerifierKey};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn generate(out: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["keys", "generate", "--name", "clinic-east", "--out"])
        .arg(out)
        .output()
        .expect("sluice runs")
}

#[test]
fn generate_writes_a_private_key_and_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("checkpoint.key");
    let run = generate(&out);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));

    let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is readable by its owner only");
    let key = SigningKey::from_key_file(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let public =
        VerifierKey::parse(std::fs::read_to_string(dir.path().join("checkpoint.key.pub")).unwrap().trim()).unwrap();
    assert_eq!(public.public_key(), key.verifier().public_key());
    assert_eq!(public.name(), "clinic-east");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains(&key.log_id()), "the log id is printed: {stdout}");

    // A second run does not replace the key.
    let before = std::fs::read(&out).unwrap();
    let again = generate(&out);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists; not replacing it"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), before);
}
