//! Positions in policy source text.
//!
//! Owns: turning byte offsets into 1-based line and column, and finding where
//! each policy of a file starts (Cedar's public API does not expose a
//! policy's location, and annotation problems need one).
//! Does not: parse Cedar; it only skips strings and `//` comments to find the
//! `;` that ends each policy.

/// A file's text with a line index.
#[derive(Debug)]
pub(crate) struct SourceFile {
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(name: String, text: String) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile { name, text, line_starts }
    }

    /// 1-based (line, column) of a byte offset; the column counts characters.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset); // >= 1
        let start = self.line_starts[line - 1];
        let column = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count()) + 1;
        (line, column)
    }

    /// Byte offsets where each policy starts (its first annotation or its
    /// `permit`/`forbid`), in source order: the i-th offset belongs to the
    /// i-th policy Cedar parses from this text.
    pub fn policy_starts(&self) -> Vec<usize> {
        let bytes = self.text.as_bytes();
        let mut starts = Vec::new();
        let mut in_policy = false;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'/' && bytes.get(i + 1) == Some(&b'/') {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            if b.is_ascii_whitespace() {
                i += 1;
                continue;
            }
            if !in_policy {
                starts.push(i);
                in_policy = true;
            }
            match b {
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                }
                b';' => in_policy = false,
                _ => {}
            }
            i += 1;
        }
        starts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let f = SourceFile::new("a".into(), "ab\ncdé\nf".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(7), (2, 4)); // after the two-byte é
        assert_eq!(f.line_col(8), (3, 1));
    }

    #[test]
    fn starts_skip_strings_and_comments() {
        let text = "// a; comment\n@id(\"x;y\")\npermit(principal, action, resource);\n\n  forbid(principal, action, resource) when { context.fingerprint == \"\\\";\" };\n// end;";
        let f = SourceFile::new("a".into(), text.into());
        let starts = f.policy_starts();
        assert_eq!(starts.len(), 2);
        assert_eq!(f.line_col(starts[0]), (2, 1));
        assert_eq!(f.line_col(starts[1]), (5, 3));
    }
}
