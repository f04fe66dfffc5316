//! Shared by the robustness tests (`robustness.rs` for PostgreSQL,
//! `mysql_robustness.rs` for MySQL): running the classifier on a small
//! stack, and building deeply nested statements.

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
