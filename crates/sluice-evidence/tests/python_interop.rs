//! Checks the Rust roots and proofs with an independent RFC 9162 implementation: a few lines of
//! Python using only `hashlib`, which rebuilds the leaves from the same records.

use std::process::Command;

use sluice_evidence::{Hash, MerkleLog, consistency_proof, inclusion_proof, leaf_hash};

/// Leaves are `record <i>`; roots by the RFC's recursive MTH; proofs verified with the algorithms of
/// RFC 9162 sections 2.1.3.2 and 2.1.4.2. Arguments: the leaf count, then `inc:<index>:<size>:<hex,...>`
/// and `con:<m>:<n>:<hex,...>` checks; it prints one line per check and exits 1 if any fails.
const VERIFIER: &str = r#"
import hashlib, sys
H = lambda b: hashlib.sha256(b).digest()
node = lambda l, r: H(b"\x01" + l + r)
def mth(d):
    if not d: return H(b"")
    if len(d) == 1: return H(b"\x00" + d[0])
    k = 1
    while k * 2 < len(d): k *= 2
    return node(mth(d[:k]), mth(d[k:]))
def inclusion(leaf, index, size, path, root):
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn: fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root
def consistency(m, n, root_m, root_n, path):
    if not path: return False
    if m & (m - 1) == 0: path = [root_m] + path
    fn, sn = m - 1, n - 1
    while fn & 1: fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0: return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn: fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root_m and sr == root_n
records = [b"record %d" % i for i in range(int(sys.argv[1]))]
ok = True
for arg in sys.argv[2:]:
    kind, a, b, hexes = arg.split(":")
    a, b = int(a), int(b)
    path = [bytes.fromhex(h) for h in hexes.split(",") if h]
    good = False
    if kind == "inc":
        good = inclusion(H(b"\x00" + records[a]), a, b, path, mth(records[:b]))
    elif kind == "con":
        good = consistency(a, b, mth(records[:a]), mth(records[:b]), path)
    print(arg.split(":")[:3], "ok" if good else "FAILED")
    ok = ok and good
sys.exit(0 if ok else 1)
"#;

const LEAVES: u64 = 23;

fn record(i: u64) -> Vec<u8> {
    format!("record {i}").into_bytes()
}

fn hexes(proof: &[Hash]) -> String {
    proof.iter().map(hex::encode).collect::<Vec<_>>().join(",")
}

fn run_python(args: &[String]) -> std::process::Output {
    Command::new("python3").arg("-c").arg(VERIFIER).arg(LEAVES.to_string()).args(args).output().expect("python3 runs")
}

fn leaves() -> Vec<Hash> {
    (0..LEAVES).map(|i| leaf_hash(&record(i))).collect()
}

#[test]
fn python_hashlib_verifies_rust_proofs() {
    let leaves = leaves();
    let mut args = Vec::new();
    for (index, size) in [(0, 1), (0, 23), (13, 23), (22, 23), (5, 8), (7, 16)] {
        let proof = inclusion_proof(leaves.as_slice(), index, size).unwrap();
        args.push(format!("inc:{index}:{size}:{}", hexes(&proof)));
    }
    for (m, n) in [(1, 23), (7, 23), (8, 23), (13, 23), (3, 7), (4, 7), (16, 17)] {
        let proof = consistency_proof(leaves.as_slice(), m, n).unwrap();
        args.push(format!("con:{m}:{n}:{}", hexes(&proof)));
    }
    let output = run_python(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "python said:\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.matches(" ok").count(), args.len(), "{stdout}");
}

#[test]
fn python_hashlib_rejects_a_flipped_proof() {
    let leaves = leaves();
    let mut proof = inclusion_proof(leaves.as_slice(), 13, 23).unwrap();
    proof[1][0] ^= 0x80;
    let output = run_python(&[format!("inc:13:23:{}", hexes(&proof))]);
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stdout));
}

#[test]
fn python_hashlib_computes_the_same_root() {
    let mut log = MerkleLog::new();
    for i in 0..LEAVES {
        log.append_record(&record(i));
    }
    let script = "import hashlib, sys\nH = lambda b: hashlib.sha256(b).digest()\n\
        def mth(d):\n    if not d: return H(b'')\n    if len(d) == 1: return H(b'\\x00' + d[0])\n    \
        k = 1\n    while k * 2 < len(d): k *= 2\n    return H(b'\\x01' + mth(d[:k]) + mth(d[k:]))\n\
        print(mth([b'record %d' % i for i in range(int(sys.argv[1]))]).hex())\n";
    let output = Command::new("python3").arg("-c").arg(script).arg(LEAVES.to_string()).output().expect("python3 runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), hex::encode(log.root()));
}
