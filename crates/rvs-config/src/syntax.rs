//! The syntax of lvs.cf: a hand-written lexer and recursive-descent parser producing a tree
//! of `key = value ...` statements and `kind NAME { ... }` blocks, every piece with its byte
//! span.
//!
//! This layer knows nothing of which keys exist or what they mean (that is [`crate::lvs`]);
//! it only checks the shape: `=` after a key, a name and braces around a block, balanced
//! braces, terminated strings with known C escapes. `#` starts a comment anywhere outside a
//! string. A statement ends at the end of its line (or at a `}`).

use core::ops::Range;

/// Byte range in the source text.
pub(crate) type Span = Range<usize>;

/// Blocks nest at most this deep (lvs.cf uses two levels: virtual > server).
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A bare word (anything up to whitespace, `=`, `{`, `}`, `#` or `"`).
    Word(String),
    /// A double-quoted string, escapes resolved.
    Str(String),
    Eq,
    LBrace,
    RBrace,
    Newline,
    Eof,
}

/// One syntax error: span, message, what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) span: Span,
    pub(crate) message: String,
    pub(crate) expected: Option<String>,
}

fn err(span: Span, message: impl Into<String>, expected: Option<&str>) -> SyntaxError {
    SyntaxError {
        span,
        message: message.into(),
        expected: expected.map(str::to_string),
    }
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    errors: Vec<SyntaxError>,
}

impl<'a> Lexer<'a> {
    fn peek_char(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn next(&mut self) -> (Tok, Span) {
        loop {
            let start = self.pos;
            let Some(c) = self.bump() else {
                return (Tok::Eof, start..start);
            };
            match c {
                '\n' => return (Tok::Newline, start..self.pos),
                c if c.is_whitespace() => continue,
                '#' => {
                    while let Some(c) = self.peek_char() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                '=' => return (Tok::Eq, start..self.pos),
                '{' => return (Tok::LBrace, start..self.pos),
                '}' => return (Tok::RBrace, start..self.pos),
                '"' => return self.string(start),
                _ => {
                    while let Some(c) = self.peek_char() {
                        if c.is_whitespace() || matches!(c, '=' | '{' | '}' | '#' | '"') {
                            break;
                        }
                        self.bump();
                    }
                    return (
                        Tok::Word(self.text[start..self.pos].to_string()),
                        start..self.pos,
                    );
                }
            }
        }
    }

    fn string(&mut self, start: usize) -> (Tok, Span) {
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None | Some('\n') => {
                    if self.text[..self.pos].ends_with('\n') {
                        self.pos = at; // leave the line break for the parser
                    }
                    self.errors.push(err(
                        start..start + 1,
                        "unterminated string",
                        Some("a closing `\"` on the same line"),
                    ));
                    return (Tok::Str(out), start..self.pos);
                }
                Some('"') => return (Tok::Str(out), start..self.pos),
                Some('\\') => match self.escape(at) {
                    Some(c) => out.push(c),
                    None => continue,
                },
                Some(c) => out.push(c),
            }
        }
    }

    /// The character of an escape whose backslash is at `at` (the backslash is consumed).
    fn escape(&mut self, at: usize) -> Option<char> {
        let c = self.peek_char();
        let simple = match c {
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('a') => Some('\x07'),
            Some('b') => Some('\x08'),
            Some('f') => Some('\x0c'),
            Some('v') => Some('\x0b'),
            Some('\\') => Some('\\'),
            Some('"') => Some('"'),
            Some('\'') => Some('\''),
            Some('?') => Some('?'),
            _ => None,
        };
        if let Some(s) = simple {
            self.bump();
            return Some(s);
        }
        match c {
            Some('x') => {
                self.bump();
                let digits_start = self.pos;
                while self.pos - digits_start < 2
                    && self.peek_char().is_some_and(|c| c.is_ascii_hexdigit())
                {
                    self.bump();
                }
                let digits = &self.text[digits_start..self.pos];
                match u8::from_str_radix(digits, 16) {
                    Ok(v) => Some(char::from(v)),
                    Err(_) => {
                        self.errors.push(err(
                            at..self.pos,
                            "`\\x` escape without hex digits",
                            Some("`\\x` followed by one or two hex digits"),
                        ));
                        None
                    }
                }
            }
            Some('0'..='7') => {
                let digits_start = self.pos;
                while self.pos - digits_start < 3 && self.peek_char().is_some_and(|c| c.is_digit(8))
                {
                    self.bump();
                }
                let v = u32::from_str_radix(&self.text[digits_start..self.pos], 8).unwrap_or(0);
                Some(char::from((v & 0xff) as u8))
            }
            Some('\n') | None => None, // the string is unterminated; reported by the caller
            Some(other) => {
                self.bump();
                self.errors.push(err(
                    at..self.pos,
                    format!("unknown escape `\\{other}` in a string"),
                    Some("one of `\\n \\r \\t \\\\ \\\"`, `\\xHH` or an octal `\\ooo`"),
                ));
                None
            }
        }
    }
}

/// A value after `=`: a word or a quoted string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Value {
    pub(crate) text: String,
    pub(crate) span: Span,
    pub(crate) quoted: bool,
}

/// `key = value ...`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyStmt {
    pub(crate) key: String,
    pub(crate) key_span: Span,
    /// Span of the `=`.
    pub(crate) eq_span: Span,
    pub(crate) values: Vec<Value>,
}

impl KeyStmt {
    /// The span of all values (or just past the `=` when there are none).
    pub(crate) fn values_span(&self) -> Span {
        match (self.values.first(), self.values.last()) {
            (Some(a), Some(b)) => a.span.start..b.span.end,
            _ => self.eq_span.end..self.eq_span.end,
        }
    }
}

/// `kind NAME { ... }`
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) kind: String,
    pub(crate) kind_span: Span,
    pub(crate) name: Option<Value>,
    pub(crate) body: Vec<Stmt>,
}

impl Block {
    /// The span of the block's header (`kind NAME`), used to blame the whole block.
    pub(crate) fn header_span(&self) -> Span {
        match &self.name {
            Some(n) => self.kind_span.start..n.span.end,
            None => self.kind_span.clone(),
        }
    }
}

/// A statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stmt {
    Key(KeyStmt),
    Block(Block),
}

struct Parser<'a> {
    lex: Lexer<'a>,
    tok: Tok,
    span: Span,
    errors: Vec<SyntaxError>,
}

impl Parser<'_> {
    fn advance(&mut self) {
        let (t, s) = self.lex.next();
        self.tok = t;
        self.span = s;
    }

    /// Skip the rest of a broken line, stopping before a `}` so blocks still close.
    fn recover(&mut self) {
        while !matches!(self.tok, Tok::Newline | Tok::Eof | Tok::RBrace) {
            self.advance();
        }
    }

    fn skip_newlines(&mut self) {
        while self.tok == Tok::Newline {
            self.advance();
        }
    }

    /// Statements until `}` (when `depth > 0`) or the end of the file.
    fn stmts(&mut self, depth: usize) -> Vec<Stmt> {
        let mut out = Vec::new();
        loop {
            self.skip_newlines();
            match self.tok.clone() {
                Tok::Eof => return out,
                Tok::RBrace => {
                    if depth > 0 {
                        return out;
                    }
                    self.errors.push(err(
                        self.span.clone(),
                        "unexpected `}`: no block is open here",
                        Some("a key or a block"),
                    ));
                    self.advance();
                }
                Tok::Word(w) => {
                    let word_span = self.span.clone();
                    self.advance();
                    if let Some(s) = self.after_word(w, word_span, depth) {
                        out.push(s);
                    }
                }
                Tok::Str(_) => {
                    self.errors.push(err(
                        self.span.clone(),
                        "a string cannot start a statement",
                        Some("a key (`name = value`) or a block (`virtual NAME {`)"),
                    ));
                    self.recover();
                }
                Tok::Eq => {
                    self.errors.push(err(
                        self.span.clone(),
                        "`=` without a key before it",
                        Some("a key (`name = value`)"),
                    ));
                    self.recover();
                }
                Tok::LBrace => {
                    let open = self.span.clone();
                    self.errors.push(err(
                        open.clone(),
                        "`{` without a block header before it",
                        Some("`virtual NAME {`, `server NAME {` or `failover NAME {`"),
                    ));
                    self.advance();
                    // Parse and drop the body so its `}` does not look unexpected.
                    let _ = self.block_body(open, "block", depth);
                }
                Tok::Newline => unreachable!("skipped above"),
            }
        }
    }

    fn after_word(&mut self, word: String, word_span: Span, depth: usize) -> Option<Stmt> {
        match self.tok.clone() {
            Tok::Eq => {
                let eq_span = self.span.clone();
                self.advance();
                let mut values = Vec::new();
                loop {
                    match self.tok.clone() {
                        Tok::Word(t) => values.push(Value {
                            text: t,
                            span: self.span.clone(),
                            quoted: false,
                        }),
                        Tok::Str(t) => values.push(Value {
                            text: t,
                            span: self.span.clone(),
                            quoted: true,
                        }),
                        Tok::Newline | Tok::Eof | Tok::RBrace => break,
                        Tok::Eq | Tok::LBrace => {
                            let what = if self.tok == Tok::Eq { "=" } else { "{" };
                            self.errors.push(err(
                                self.span.clone(),
                                format!("unexpected `{what}` in the value of `{word}`"),
                                Some("a value, then the end of the line (quote it if it holds `=`, `{` or `#`)"),
                            ));
                            self.recover();
                            return None;
                        }
                    }
                    self.advance();
                }
                if values.is_empty() {
                    self.errors.push(err(
                        eq_span.clone(),
                        format!("missing value for `{word}`"),
                        Some("a value after `=`"),
                    ));
                    return None;
                }
                Some(Stmt::Key(KeyStmt {
                    key: word,
                    key_span: word_span,
                    eq_span,
                    values,
                }))
            }
            Tok::Word(_) | Tok::Str(_) => {
                let (Tok::Word(t) | Tok::Str(t)) = self.tok.clone() else {
                    unreachable!()
                };
                let name = Value {
                    text: t,
                    span: self.span.clone(),
                    quoted: matches!(self.tok, Tok::Str(_)),
                };
                self.advance();
                self.skip_newlines();
                if self.tok != Tok::LBrace {
                    self.errors.push(err(
                        word_span.start..name.span.end,
                        format!("`{word} {}` is neither a key nor a block", name.text),
                        Some(
                            &if ["virtual", "server", "failover"].contains(&word.as_str()) {
                                format!("`{word} {} {{`", name.text)
                            } else {
                                format!("`{word} = {}`", name.text)
                            },
                        ),
                    ));
                    self.recover();
                    return None;
                }
                let open = self.span.clone();
                self.advance();
                let body = self.block_body(open, &word, depth)?;
                Some(Stmt::Block(Block {
                    kind: word,
                    kind_span: word_span,
                    name: Some(name),
                    body,
                }))
            }
            Tok::LBrace => {
                let open = self.span.clone();
                self.errors.push(err(
                    word_span.end..open.start.max(word_span.end),
                    format!("`{word}` block without a name"),
                    Some(&format!("`{word} NAME {{`")),
                ));
                self.advance();
                let _ = self.block_body(open, &word, depth);
                None
            }
            Tok::Newline | Tok::Eof | Tok::RBrace => {
                self.errors.push(err(
                    word_span.end..word_span.end,
                    format!("`{word}` has no `=` and no value"),
                    Some(&format!("`{word} = VALUE`")),
                ));
                None
            }
        }
    }

    /// After `{`: the statements and the closing `}`. `None` if nesting is too deep.
    fn block_body(&mut self, open: Span, kind: &str, depth: usize) -> Option<Vec<Stmt>> {
        if depth + 1 > MAX_DEPTH {
            self.errors.push(err(
                open.clone(),
                format!("blocks nested more than {MAX_DEPTH} deep"),
                Some("`server` blocks inside `virtual` blocks, nothing deeper"),
            ));
            // Skip to the matching brace without recursing.
            let mut level = 1usize;
            while level > 0 {
                match self.tok {
                    Tok::LBrace => level += 1,
                    Tok::RBrace => level -= 1,
                    Tok::Eof => return None,
                    _ => {}
                }
                self.advance();
            }
            return None;
        }
        let body = self.stmts(depth + 1);
        if self.tok == Tok::RBrace {
            self.advance();
        } else {
            self.errors.push(err(
                open,
                format!("unclosed `{{` of this `{kind}` block"),
                Some("a `}` closing it before the end of the file"),
            ));
        }
        Some(body)
    }
}

/// Parse lvs.cf text into statements. Errors come in source order, the lexer's merged in.
pub(crate) fn parse(text: &str) -> (Vec<Stmt>, Vec<SyntaxError>) {
    let mut p = Parser {
        lex: Lexer {
            text,
            pos: 0,
            errors: Vec::new(),
        },
        tok: Tok::Eof,
        span: 0..0,
        errors: Vec::new(),
    };
    p.advance();
    let stmts = p.stmts(0);
    let mut errors = p.errors;
    errors.append(&mut p.lex.errors);
    errors.sort_by_key(|e| e.span.start);
    (stmts, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(stmts: &[Stmt]) -> Vec<String> {
        stmts
            .iter()
            .map(|s| match s {
                Stmt::Key(k) => format!(
                    "{}={}",
                    k.key,
                    k.values
                        .iter()
                        .map(|v| v.text.as_str())
                        .collect::<Vec<_>>()
                        .join("|")
                ),
                Stmt::Block(b) => format!("{}[{}]", b.kind, keys(&b.body).join(",")),
            })
            .collect()
    }

    #[test]
    fn keys_blocks_strings_and_comments() {
        let text = "network = nat # comment\nvirtual web {\n address = 1.2.3.4 eth0:1\n send = \"GET / HTTP/1.0\\r\\n\\r\\n\"\n server a { weight = 2 }\n}\n";
        let (stmts, errors) = parse(text);
        assert_eq!(errors, vec![]);
        assert_eq!(
            keys(&stmts),
            vec![
                "network=nat",
                "virtual[address=1.2.3.4|eth0:1,send=GET / HTTP/1.0\r\n\r\n,server[weight=2]]"
            ]
        );
        let Stmt::Key(k) = &stmts[0] else { panic!() };
        assert_eq!(&text[k.key_span.clone()], "network");
        assert_eq!(&text[k.values[0].span.clone()], "nat");
    }

    #[test]
    fn escapes() {
        let (stmts, errors) = parse(r#"a = "\x41\101\t\"\\""#);
        assert!(errors.is_empty());
        let Stmt::Key(k) = &stmts[0] else { panic!() };
        assert_eq!(k.values[0].text, "AA\t\"\\");
    }

    #[test]
    fn unclosed_and_unexpected_braces() {
        let (_, errors) = parse("virtual a {\n port = 80\n");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].span, 10..11);
        let (_, errors) = parse("}\n");
        assert_eq!(errors[0].message, "unexpected `}`: no block is open here");
    }

    #[test]
    fn deep_nesting_does_not_recurse_forever() {
        let text = "a b {".repeat(10_000);
        let (_, errors) = parse(&text);
        assert!(!errors.is_empty());
        let text = "{".repeat(100_000);
        let (_, errors) = parse(&text);
        assert!(!errors.is_empty());
    }
}
