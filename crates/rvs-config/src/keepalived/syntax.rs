//! The syntax of keepalived.conf: a lexer and recursive-descent parser producing a tree of
//! `keyword value ...` statements, each optionally followed by a `{ ... }` block, every word
//! located in its file; `include` expanded in place.
//!
//! What keepalived's reader does and this one copies: words are separated by white space;
//! `{` and `}` are words of their own; `!` or `#` at the start of a word comments out the
//! rest of the line; `"..."` is one word (quotes removed); a block's `{` may also start the
//! next line; `include PATTERN` splices the matching files (a glob, relative to the including
//! file) at the point of the include, at any level. Lines starting with `@NAME` apply only
//! to keepalived's `-i NAME` configuration id, which rvs does not have: they are skipped with
//! a warning (`@^NAME` lines, which apply to every other id, are kept). Parameter
//! definitions (`$NAME=value`) are refused: rvs does not substitute them.
//!
//! This layer does not know which keywords exist (that is the parent module's job).

use core::ops::Range;
use std::path::{Path, PathBuf};

/// How deep blocks may nest (keepalived uses four levels: virtual_server > real_server >
/// HTTP_GET > url).
const MAX_DEPTH: usize = 16;
/// How deep includes may nest.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 8;

/// A byte range in one of the parsed files.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Loc {
    /// Index of the file in [`Sources`].
    pub(crate) src: usize,
    /// Byte range in that file.
    pub(crate) span: Range<usize>,
}

impl Loc {
    /// From the start of `self` to the end of `other` (same file) or `self` alone.
    pub(crate) fn to(&self, other: &Loc) -> Loc {
        if other.src == self.src && other.span.end >= self.span.start {
            Loc {
                src: self.src,
                span: self.span.start..other.span.end,
            }
        } else {
            self.clone()
        }
    }

    /// The empty location just after `self`.
    pub(crate) fn after(&self) -> Loc {
        Loc {
            src: self.src,
            span: self.span.end..self.span.end,
        }
    }
}

/// One word of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The text, quotes removed.
    pub(crate) text: String,
    /// Where it is.
    pub(crate) loc: Loc,
}

/// A `{ ... }` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    /// The `{`.
    pub(crate) open: Loc,
    /// The statements inside.
    pub(crate) body: Vec<Stmt>,
}

/// `keyword value ...` with an optional block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stmt {
    /// The words on the line (never empty).
    pub(crate) words: Vec<Word>,
    /// The block, if one follows.
    pub(crate) block: Option<Block>,
}

impl Stmt {
    /// The keyword.
    pub(crate) fn key(&self) -> &Word {
        &self.words[0]
    }

    /// The values after the keyword.
    pub(crate) fn args(&self) -> &[Word] {
        &self.words[1..]
    }

    /// From the keyword to the last word.
    pub(crate) fn line_loc(&self) -> Loc {
        let first = &self.words[0].loc;
        first.to(&self.words[self.words.len() - 1].loc)
    }
}

/// A file that took part in the parse.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// The path as shown in diagnostics.
    pub(crate) path: String,
    /// Its text.
    pub(crate) text: String,
}

/// A diagnostic found while reading: location, severity, message, expectation.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub(crate) loc: Loc,
    pub(crate) error: bool,
    pub(crate) message: String,
    pub(crate) expected: Option<String>,
}

/// Reads an included file: `Ok((shown path, text, canonical path))` or an error message.
pub(crate) type Reader<'r> = dyn FnMut(&Path) -> Result<(String, String, PathBuf), String> + 'r;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(Word),
    Open(Loc),
    Close(Loc),
    Newline,
}

/// Lex one file into tokens; findings go to `out`.
fn lex(src: usize, text: &str, out: &mut Vec<Finding>) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let base = line_start;
        line_start += line.len();
        let body = line.trim_end_matches(['\n', '\r']);
        let mut i = 0;
        let bytes = body.as_bytes();
        // Leading white space, then a possible `@` condition or `$` definition.
        while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
            i += 1;
        }
        if body[i..].starts_with('@') {
            let end = body[i..].find([' ', '\t']).map_or(body.len(), |e| i + e);
            let cond = &body[i + 1..end];
            let loc = Loc {
                src,
                span: base + i..base + end,
            };
            if let Some(not) = cond.strip_prefix('^') {
                out.push(Finding {
                    loc,
                    error: false,
                    message: format!(
                        "conditional line `@^{not}` is kept: rvs has no configuration id, so \
                         every `@^NAME` line applies"
                    ),
                    expected: None,
                });
                i = end;
            } else {
                out.push(Finding {
                    loc,
                    error: false,
                    message: format!(
                        "line for configuration id `{cond}` skipped: rvs has no `-i` \
                         configuration id, so `@NAME` lines never apply"
                    ),
                    expected: None,
                });
                toks.push(Tok::Newline);
                continue;
            }
        } else if body[i..].starts_with('$') {
            out.push(Finding {
                loc: Loc {
                    src,
                    span: base + i..base + body.len(),
                },
                error: true,
                message: "parameter definitions (`$NAME=value`) are not supported by rvs"
                    .to_string(),
                expected: Some("the value written out where `$NAME` is used".to_string()),
            });
            toks.push(Tok::Newline);
            continue;
        }
        while i < bytes.len() {
            let c = bytes[i];
            if c == b' ' || c == b'\t' || c == b'\r' || c == 0x0b || c == 0x0c {
                i += 1;
                continue;
            }
            let start = i;
            match c {
                b'!' | b'#' => break,
                b'{' => {
                    i += 1;
                    toks.push(Tok::Open(Loc {
                        src,
                        span: base + start..base + i,
                    }));
                }
                b'}' => {
                    i += 1;
                    toks.push(Tok::Close(Loc {
                        src,
                        span: base + start..base + i,
                    }));
                }
                b'"' => {
                    i += 1;
                    let mut s = String::new();
                    let mut closed = false;
                    while i < bytes.len() {
                        let rest = &body[i..];
                        let ch = rest.chars().next().unwrap_or('"');
                        if ch == '"' {
                            i += 1;
                            closed = true;
                            break;
                        }
                        if ch == '\\' && (rest[1..].starts_with('"') || rest[1..].starts_with('\\'))
                        {
                            s.push(rest.as_bytes()[1] as char);
                            i += 2;
                            continue;
                        }
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                    if !closed {
                        out.push(Finding {
                            loc: Loc {
                                src,
                                span: base + start..base + start + 1,
                            },
                            error: true,
                            message: "unterminated string".to_string(),
                            expected: Some("a closing `\"` on the same line".to_string()),
                        });
                    }
                    toks.push(Tok::Word(Word {
                        text: s,
                        loc: Loc {
                            src,
                            span: base + start..base + i,
                        },
                    }));
                }
                _ => {
                    while i < bytes.len() {
                        let b = bytes[i];
                        if b == b' ' || b == b'\t' || b == b'\r' || b == b'{' || b == b'}' {
                            break;
                        }
                        i += 1;
                    }
                    // `i` stops on an ASCII byte or the end, so it is a char boundary.
                    toks.push(Tok::Word(Word {
                        text: body[start..i].to_string(),
                        loc: Loc {
                            src,
                            span: base + start..base + i,
                        },
                    }));
                }
            }
        }
        toks.push(Tok::Newline);
    }
    toks
}

/// Parses the files of one configuration, expanding includes.
pub(crate) struct Parser<'r> {
    pub(crate) sources: Vec<Source>,
    pub(crate) findings: Vec<Finding>,
    reader: Option<&'r mut Reader<'r>>,
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
}

impl<'r> Parser<'r> {
    /// A parser that reads includes with `reader` (None: includes are refused).
    pub(crate) fn new(reader: Option<&'r mut Reader<'r>>) -> Self {
        Parser {
            sources: Vec::new(),
            findings: Vec::new(),
            reader,
            stack: Vec::new(),
        }
    }

    fn error(&mut self, loc: Loc, message: impl Into<String>, expected: Option<&str>) {
        self.findings.push(Finding {
            loc,
            error: true,
            message: message.into(),
            expected: expected.map(str::to_string),
        });
    }

    fn warn(&mut self, loc: Loc, message: impl Into<String>) {
        self.findings.push(Finding {
            loc,
            error: false,
            message: message.into(),
            expected: None,
        });
    }

    /// Parse a file's text; its statements, includes expanded.
    pub(crate) fn file(
        &mut self,
        path: String,
        text: String,
        canonical: Option<PathBuf>,
    ) -> Vec<Stmt> {
        let src = self.sources.len();
        let toks = lex(src, &text, &mut self.findings);
        if let Some(c) = &canonical {
            self.stack.push(c.clone());
        }
        self.sources.push(Source { path, text });
        let mut pos = 0;
        let stmts = self.body(&toks, &mut pos, None, 0);
        if canonical.is_some() {
            self.stack.pop();
        }
        stmts
    }

    /// Statements until the matching `}` (when `open` is set) or the end of the tokens.
    fn body(
        &mut self,
        toks: &[Tok],
        pos: &mut usize,
        open: Option<&Loc>,
        depth: usize,
    ) -> Vec<Stmt> {
        let mut out: Vec<Stmt> = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        // Whether the last finished statement may still take a `{` from the next line.
        let mut may_take_block = false;
        while let Some(t) = toks.get(*pos) {
            *pos += 1;
            match t {
                Tok::Word(w) => words.push(w.clone()),
                Tok::Newline => {
                    if !words.is_empty() {
                        self.finish(&mut out, std::mem::take(&mut words), None);
                        may_take_block = out.last().is_some_and(|s| s.block.is_none());
                    }
                }
                Tok::Open(loc) => {
                    if depth + 1 > MAX_DEPTH {
                        self.error(
                            loc.clone(),
                            format!("blocks nest deeper than {MAX_DEPTH} levels"),
                            Some("fewer nested blocks"),
                        );
                        // Skip to the matching brace.
                        let mut level = 1;
                        while let Some(t) = toks.get(*pos) {
                            *pos += 1;
                            match t {
                                Tok::Open(_) => level += 1,
                                Tok::Close(_) => {
                                    level -= 1;
                                    if level == 0 {
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                        words.clear();
                        continue;
                    }
                    let inner = self.body(toks, pos, Some(loc), depth + 1);
                    let block = Block {
                        open: loc.clone(),
                        body: inner,
                    };
                    if !words.is_empty() {
                        self.finish(&mut out, std::mem::take(&mut words), Some(block));
                    } else if may_take_block && let Some(last) = out.last_mut() {
                        last.block = Some(block);
                    } else {
                        self.error(
                            loc.clone(),
                            "a block without a keyword",
                            Some("a keyword before `{`, e.g. `virtual_ipaddress {`"),
                        );
                    }
                    may_take_block = false;
                }
                Tok::Close(loc) => {
                    if !words.is_empty() {
                        self.finish(&mut out, std::mem::take(&mut words), None);
                    }
                    if open.is_some() {
                        return out;
                    }
                    self.error(
                        loc.clone(),
                        "unexpected `}`: no block is open here",
                        Some("a keyword or the end of the file"),
                    );
                    may_take_block = false;
                }
            }
        }
        if !words.is_empty() {
            self.finish(&mut out, words, None);
        }
        if let Some(open) = open {
            self.error(
                open.clone(),
                "unclosed block: this `{` has no matching `}`",
                Some("a `}` closing the block before the end of the file"),
            );
        }
        out
    }

    /// Add a statement, expanding `include`.
    fn finish(&mut self, out: &mut Vec<Stmt>, words: Vec<Word>, block: Option<Block>) {
        if words[0].text == "include" && block.is_none() {
            self.include(out, &words);
            return;
        }
        out.push(Stmt { words, block });
    }

    fn include(&mut self, out: &mut Vec<Stmt>, words: &[Word]) {
        let kw = &words[0];
        let Some(pattern) = words.get(1) else {
            self.error(
                kw.loc.after(),
                "`include` needs a file name or pattern",
                Some("`include FILE` (a glob such as `conf.d/*.conf` is allowed)"),
            );
            return;
        };
        if let Some(extra) = words.get(2) {
            self.error(
                extra.loc.to(&words[words.len() - 1].loc),
                "`include` takes one file name or pattern",
                Some("the end of the line (quote a name with spaces)"),
            );
            return;
        }
        if self.reader.is_none() {
            self.error(
                kw.loc.to(&pattern.loc),
                "`include` needs file access",
                Some("a configuration loaded from a file (`load_keepalived`)"),
            );
            return;
        }
        if self.stack.len() > MAX_INCLUDE_DEPTH {
            self.error(
                kw.loc.to(&pattern.loc),
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} files"),
                Some("fewer levels of `include`"),
            );
            return;
        }
        let including = &self.sources[pattern.loc.src];
        // Relative to the including file as it was named (so diagnostics keep the
        // caller's style of path); cycles are found through canonical paths.
        let base = Path::new(&including.path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let full = base.join(&pattern.text);
        let files = if has_glob(&pattern.text) {
            let found = glob(&full);
            if found.is_empty() {
                self.warn(
                    pattern.loc.clone(),
                    format!("`include {}` matches no file", pattern.text),
                );
            }
            found
        } else {
            vec![full]
        };
        for f in files {
            let read = match self.reader.as_mut() {
                Some(r) => r(&f),
                None => return,
            };
            match read {
                Ok((shown, text, canonical)) => {
                    if self.stack.contains(&canonical) {
                        self.error(
                            pattern.loc.clone(),
                            format!("include cycle: `{shown}` is already being read"),
                            Some("a file that does not include itself, directly or not"),
                        );
                        continue;
                    }
                    let stmts = self.file(shown, text, Some(canonical));
                    out.extend(stmts);
                }
                Err(e) => self.error(
                    pattern.loc.clone(),
                    format!("cannot include `{}`: {e}", f.display()),
                    Some("a readable UTF-8 file"),
                ),
            }
        }
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The files matching a glob pattern (`*`, `?`, `[...]` in any component), sorted per
/// directory level as glob(3) does; dot files only match a pattern starting with `.`.
pub(crate) fn glob(pattern: &Path) -> Vec<PathBuf> {
    let mut current: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = comp.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for dir in &current {
            if !has_glob(&part) {
                next.push(dir.join(comp.as_os_str()));
                continue;
            }
            let listing = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(listing) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .filter(|n| wildmatch(&part, n))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        current = next;
    }
    current.into_iter().filter(|p| p.is_file()).collect()
}

/// Shell wildcard match of one path component.
pub(crate) fn wildmatch(pat: &str, name: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(&p, pi, n[ni]),
            Some(&c) if c == n[ni] => Some(pi + 1),
            _ => None,
        };
        match step {
            Some(np) => {
                pi = np;
                ni += 1;
            }
            None => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Match `c` against the class starting at `p[at] == '['`: the index after `]`, or None.
fn class(p: &[char], at: usize, c: char) -> Option<usize> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while let Some(&x) = p.get(i) {
        if x == ']' && !first {
            return (matched != negate).then_some(i + 1);
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            if x <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if x == c {
                matched = true;
            }
            i += 1;
        }
    }
    // No closing `]`: the `[` is literal.
    (c == '[').then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Vec<Stmt>, Vec<Finding>) {
        let mut p = Parser::new(None);
        let s = p.file("t".into(), text.into(), None);
        (s, p.findings)
    }

    #[test]
    fn words_blocks_comments_and_quotes() {
        let (s, f) = parse("a 1 2 ! c\nb { x \"y z\" # c\n  u { v }\n}\nc\n{\n d\n}\n");
        assert!(f.is_empty(), "{f:?}");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].words.len(), 3);
        let b = s[1].block.as_ref().unwrap();
        assert_eq!(b.body[0].words[1].text, "y z");
        assert_eq!(b.body[1].block.as_ref().unwrap().body[0].key().text, "v");
        assert_eq!(s[2].block.as_ref().unwrap().body[0].key().text, "d");
    }

    #[test]
    fn unclosed_and_stray_braces() {
        let (_, f) = parse("a {\n b\n");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].loc.span, 2..3);
        let (_, f) = parse("}\n");
        assert!(f[0].message.contains("unexpected `}`"));
    }

    #[test]
    fn conditional_lines() {
        let (s, f) = parse("@high a 1\n@^high b 2\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].key().text, "b");
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn wildcards() {
        assert!(wildmatch("*.conf", "a.conf"));
        assert!(!wildmatch("*.conf", "a.conf.bak"));
        assert!(wildmatch("a?c", "abc"));
        assert!(wildmatch("[a-c]x", "bx"));
        assert!(!wildmatch("[!a-c]x", "bx"));
        assert!(wildmatch("*", ""));
        assert!(wildmatch("a*b*c", "aXXbYYc"));
    }
}
