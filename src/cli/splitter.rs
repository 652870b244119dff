//! Splits SQL text into statements at `;`, ignoring `;` inside quotes and comments.
//!
//! This is deliberately a tiny lexer, not a SQL parser: the server parses the statement; the
//! client only needs to know where one statement ends so that the REPL can keep reading lines
//! and `-c`/`-f` can send statements one at a time.

/// Where the lexer is inside the text it has seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LexState {
    Normal,
    SingleQuoted,
    DoubleQuoted,
    LineComment,
    /// Block comments nest in PostgreSQL (and in sqlparser), so track the depth.
    BlockComment(u32),
}

/// Incremental splitter: feed it text (a line at a time or all at once), get complete statements.
#[derive(Debug)]
pub struct StatementSplitter {
    current: String,
    state: LexState,
    /// True once the pending statement holds something other than whitespace and comments, so
    /// that `;;` or a comment-only line never becomes an empty statement on the wire.
    has_content: bool,
}

impl Default for StatementSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl StatementSplitter {
    pub fn new() -> Self {
        Self {
            current: String::new(),
            state: LexState::Normal,
            has_content: false,
        }
    }

    /// Adds `text` and returns every statement it completed (trimmed, without the final `;`).
    pub fn push(&mut self, text: &str) -> Vec<String> {
        let mut complete = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match self.state {
                LexState::Normal => match c {
                    ';' => {
                        if let Some(statement) = self.take_statement() {
                            complete.push(statement);
                        }
                        continue;
                    }
                    '\'' => self.enter_content(LexState::SingleQuoted),
                    '"' => self.enter_content(LexState::DoubleQuoted),
                    '-' if chars.peek() == Some(&'-') => {
                        self.current.push(c);
                        self.current.push('-');
                        chars.next();
                        self.state = LexState::LineComment;
                        continue;
                    }
                    '/' if chars.peek() == Some(&'*') => {
                        self.current.push(c);
                        self.current.push('*');
                        chars.next();
                        self.state = LexState::BlockComment(1);
                        continue;
                    }
                    c if !c.is_whitespace() => self.has_content = true,
                    _ => {}
                },
                // A doubled quote ('' or "") is an escaped quote: leaving and re-entering the
                // quoted state on the next character handles it without special cases.
                LexState::SingleQuoted if c == '\'' => self.state = LexState::Normal,
                LexState::DoubleQuoted if c == '"' => self.state = LexState::Normal,
                LexState::SingleQuoted | LexState::DoubleQuoted => {}
                LexState::LineComment if c == '\n' => self.state = LexState::Normal,
                LexState::LineComment => {}
                LexState::BlockComment(depth) => {
                    if c == '*' && chars.peek() == Some(&'/') {
                        self.current.push(c);
                        self.current.push('/');
                        chars.next();
                        self.state = if depth <= 1 {
                            LexState::Normal
                        } else {
                            LexState::BlockComment(depth - 1)
                        };
                        continue;
                    }
                    if c == '/' && chars.peek() == Some(&'*') {
                        self.current.push(c);
                        self.current.push('*');
                        chars.next();
                        self.state = LexState::BlockComment(depth + 1);
                        continue;
                    }
                }
            }
            self.current.push(c);
        }
        complete
    }

    /// Ends the input: returns the trailing statement that had no `;`, if it has any content.
    /// An unterminated quote is still sent, so the server reports the syntax error.
    pub fn finish(&mut self) -> Option<String> {
        let statement = self.take_statement();
        self.state = LexState::Normal;
        statement
    }

    /// True when nothing but whitespace or finished comments is pending (the REPL then shows
    /// the main prompt rather than the continuation prompt).
    pub fn is_empty(&self) -> bool {
        !self.has_content && matches!(self.state, LexState::Normal | LexState::LineComment)
    }

    /// Drops whatever is pending (Ctrl-C in the REPL).
    pub fn clear(&mut self) {
        self.current.clear();
        self.state = LexState::Normal;
        self.has_content = false;
    }

    fn enter_content(&mut self, state: LexState) {
        self.has_content = true;
        self.state = state;
    }

    fn take_statement(&mut self) -> Option<String> {
        let has_content = std::mem::replace(&mut self.has_content, false);
        let text = std::mem::take(&mut self.current);
        has_content.then(|| text.trim().to_string())
    }
}

/// Splits a whole script (from `-c` or `-f`) into its non-empty statements, in order.
pub fn split_statements(text: &str) -> Vec<String> {
    let mut splitter = StatementSplitter::new();
    let mut statements = splitter.push(text);
    statements.extend(splitter.finish());
    statements
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_and_keeps_a_trailing_statement() {
        assert_eq!(
            split_statements("select 1; select 2;select 3"),
            vec!["select 1", "select 2", "select 3"]
        );
    }

    #[test]
    fn skips_empty_and_comment_only_statements() {
        assert!(split_statements(" ; ;; \n -- nothing here;\n /* nor; here */ ;").is_empty());
        assert_eq!(split_statements(";;select 1;;"), vec!["select 1"]);
    }

    #[test]
    fn semicolon_inside_single_quotes_does_not_split() {
        assert_eq!(
            split_statements("select 'a;b'; select 'it''s;'"),
            vec!["select 'a;b'", "select 'it''s;'"]
        );
    }

    #[test]
    fn semicolon_inside_double_quotes_does_not_split() {
        assert_eq!(
            split_statements(r#"select 1 as "x;y"; select 2"#),
            vec![r#"select 1 as "x;y""#, "select 2"]
        );
    }

    #[test]
    fn semicolon_inside_line_comment_does_not_split() {
        assert_eq!(
            split_statements("select 1 -- one; two\n + 1; select 2"),
            vec!["select 1 -- one; two\n + 1", "select 2"]
        );
    }

    #[test]
    fn quote_inside_comment_does_not_open_a_string() {
        assert_eq!(
            split_statements("select 1 -- don't\n; select 2"),
            vec!["select 1 -- don't", "select 2"]
        );
    }

    #[test]
    fn dashes_inside_quotes_are_not_a_comment() {
        assert_eq!(
            split_statements("select '--'; select 2"),
            vec!["select '--'", "select 2"]
        );
    }

    #[test]
    fn nested_block_comments_hide_semicolons() {
        assert_eq!(
            split_statements("select /* a /* b; */ c; */ 1; select 2"),
            vec!["select /* a /* b; */ c; */ 1", "select 2"]
        );
    }

    #[test]
    fn single_minus_and_slash_are_ordinary_characters() {
        assert_eq!(
            split_statements("select 4 - 1, 6 / 2;"),
            vec!["select 4 - 1, 6 / 2"]
        );
    }

    #[test]
    fn unterminated_quote_is_sent_as_is_at_the_end() {
        assert_eq!(
            split_statements("select 'oops; select 2"),
            vec!["select 'oops; select 2"]
        );
    }

    #[test]
    fn incremental_lines_continue_until_semicolon() {
        let mut splitter = StatementSplitter::new();
        assert!(splitter.is_empty());
        assert!(splitter.push("select\n").is_empty());
        assert!(!splitter.is_empty());
        assert!(splitter.push("  'multi;\n").is_empty());
        assert!(!splitter.is_empty());
        assert_eq!(
            splitter.push("line' as s; select 2\n"),
            vec!["select\n  'multi;\nline' as s"]
        );
        assert!(!splitter.is_empty());
        assert_eq!(splitter.push(";\n"), vec!["select 2"]);
        assert!(splitter.is_empty());
    }

    #[test]
    fn comment_only_line_keeps_the_main_prompt() {
        let mut splitter = StatementSplitter::new();
        assert!(splitter.push("-- just a note; really\n").is_empty());
        assert!(splitter.is_empty());
        assert!(splitter.push("/* open\n").is_empty());
        assert!(!splitter.is_empty());
    }

    #[test]
    fn clear_discards_pending_input() {
        let mut splitter = StatementSplitter::new();
        splitter.push("select 'abc\n");
        splitter.clear();
        assert!(splitter.is_empty());
        assert_eq!(splitter.push("select 1;\n"), vec!["select 1"]);
    }
}
