//! `?` placeholders, which JDBC and ADBC send, rewritten to DataFusion's `$1..$n`.
//!
//! A `?` inside a string, a quoted identifier, a dollar-quoted body or a comment is text, not a
//! placeholder, so the scan follows SQL's lexical rules for those four.

use datafusion::common::{Result, plan_err};

/// `sql` with its `?` placeholders numbered `$1..$n`, and `n`. A statement may use `?` or
/// `$n` but not both: mixing them would leave the numbering ambiguous.
pub fn number_placeholders(sql: &str) -> Result<(String, usize)> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut count = 0;
    let mut dollar_numbered = false;
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => i = skip_quoted(bytes, i, b'\''),
            b'"' => i = skip_quoted(bytes, i, b'"'),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1)
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' => match dollar_tag(bytes, i) {
                Some(tag_end) => i = skip_dollar_quoted(sql, i, tag_end),
                None => {
                    dollar_numbered |= bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                    i += 1;
                }
            },
            b'?' => {
                count += 1;
                out.push_str(&sql[copied..i]);
                out.push('$');
                out.push_str(&count.to_string());
                i += 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    if count > 0 && dollar_numbered {
        return plan_err!("use either ? or $1, $2, ... placeholders in one statement, not both");
    }
    out.push_str(&sql[copied..]);
    Ok((out, count))
}

/// The index just past the quoted run that starts at `start`; a doubled quote is an escape.
fn skip_quoted(bytes: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// The index just past a (possibly nested) `/* ... */` comment.
fn skip_block_comment(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// If a dollar-quote tag (`$$` or `$tag$`) starts at `start`, the index just past it.
fn dollar_tag(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    if bytes.get(i).is_some_and(u8::is_ascii_digit) {
        return None; // `$1` is a placeholder
    }
    while let Some(&b) = bytes.get(i) {
        match b {
            b'$' => return Some(i + 1),
            b if b.is_ascii_alphanumeric() || b == b'_' => i += 1,
            _ => return None,
        }
    }
    None
}

/// The index just past the dollar-quoted body whose opening tag is `sql[start..tag_end]`.
fn skip_dollar_quoted(sql: &str, start: usize, tag_end: usize) -> usize {
    let tag = &sql[start..tag_end];
    sql[tag_end..]
        .find(tag)
        .map_or(sql.len(), |n| tag_end + n + tag.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(sql: &str) -> (String, usize) {
        number_placeholders(sql).unwrap()
    }

    #[test]
    fn numbers_question_marks_in_order() {
        assert_eq!(
            numbered("SELECT * FROM t WHERE a = ? AND b IN (?, ?)"),
            ("SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)".into(), 3)
        );
        assert_eq!(
            numbered("INSERT INTO t VALUES(?,?)").0,
            "INSERT INTO t VALUES($1,$2)"
        );
    }

    #[test]
    fn leaves_quoted_text_and_comments_alone() {
        let sql = "SELECT 'it''s ?', \"col?\" -- why?\n, ? /* a /* nested ? */ ? */ , $x$ ? $x$, $$?$$, ?";
        let (out, n) = numbered(sql);
        assert_eq!(n, 2);
        assert_eq!(
            out,
            "SELECT 'it''s ?', \"col?\" -- why?\n, $1 /* a /* nested ? */ ? */ , $x$ ? $x$, $$?$$, $2"
        );
    }

    #[test]
    fn dollar_placeholders_pass_through() {
        assert_eq!(numbered("SELECT $1 + $2"), ("SELECT $1 + $2".into(), 0));
    }

    #[test]
    fn mixing_styles_is_an_error() {
        let err = number_placeholders("SELECT ? + $1").unwrap_err();
        assert!(
            err.to_string()
                .contains("use either ? or $1, $2, ... placeholders"),
            "{err}"
        );
    }

    #[test]
    fn unterminated_text_does_not_panic() {
        assert_eq!(numbered("SELECT 'abc ?").1, 0);
        assert_eq!(numbered("SELECT /* ?").1, 0);
        assert_eq!(numbered("SELECT $a$ ?").1, 0);
        assert_eq!(numbered("SELECT ?, 'é'").0, "SELECT $1, 'é'");
    }
}
