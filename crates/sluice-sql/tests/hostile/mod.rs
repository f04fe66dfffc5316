//! Shared by the robustness tests (`robustness.rs` for PostgreSQL,
//! `mysql_robustness.rs` for MySQL): running the classifier on a small
//! stack, building deeply nested statements, and random soups of SQL pieces.

/// Runs `f` on a thread with a 2 MiB stack (like a tokio worker thread) and
/// returns its result; a stack overflow would abort the whole test binary,
/// so passing means no crash.
pub fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new().stack_size(2 * 1024 * 1024).spawn(f).expect("spawn a test thread");
    match handle.join() {
        Ok(v) => v,
        Err(_) => panic!("the classifier panicked"),
    }
}

/// `inner` wrapped in `depth` pairs of `open` and `close`.
pub fn nested(depth: usize, open: &str, inner: &str, close: &str) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()) + inner.len());
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push_str(inner);
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

/// Builds a statement nested `depth` deep.
pub type Shape = Box<dyn Fn(usize) -> String + Send>;

/// `count` strings of up to 23 of `pieces`, picked by a fixed xorshift
/// sequence (the same strings every run), separated by a space or, every
/// third piece when `glue` is set, by nothing.
pub fn soup(pieces: &[&str], count: usize, glue: bool) -> Vec<String> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..count)
        .map(|_| {
            let mut sql = String::new();
            let len = (state % 24) as usize;
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                sql.push_str(pieces[(state % pieces.len() as u64) as usize]);
                if !glue || !state.is_multiple_of(3) {
                    sql.push(' ');
                }
            }
            sql
        })
        .collect()
}
