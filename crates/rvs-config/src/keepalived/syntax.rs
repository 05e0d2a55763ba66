//! The syntax of keepalived.conf: keepalived's line reader (`lib/parser.c`: `read_line`,
//! `decomment`, `check_definition`, `replace_param`, `add_seq`, `add_lst`) followed by a
//! lexer producing, for each logical line, its words and its `{` / `}` tokens, every word
//! located in its file; `include` expanded in place.
//!
//! What keepalived's reader does and this one copies, in its order:
//! - `!` or `#` outside double quotes comments out the rest of the line (`\#`, `\!` are
//!   the characters themselves); leading and trailing blanks go; empty lines are skipped.
//! - `@ID rest` keeps `rest` only when ID is the configuration id (keepalived's `-i`),
//!   `@^ID rest` only when it is not; a line with nothing after the id is dropped.
//! - `$NAME=value` (no blank before `=`) defines a parameter; a value ending in `\`
//!   continues on the next lines until one that does not end in `\` or an empty line.
//! - `$NAME` (followed by a blank, `,`, `)` or the end of the line) and `${NAME}` anywhere
//!   are replaced by the value, again and again while the line still holds a `$`
//!   (recursive); an undefined name stays as written; a multi-line value is only replaced
//!   when its reference ends the line, its other lines following as lines of their own.
//!   Built-ins: `${_PWD}` (the directory of the file being read), `${_INSTANCE}` (the
//!   configuration id), `${_RANDOM [MIN [MAX]]}` (0..=32767 by default), `${_HASH}` (`#`),
//!   `${_BANG}` (`!`); a definition of the same name replaces a built-in.
//! - `~SEQ(VAR, [START,] [STEP,] END) text` (`~SEQx`: hexadecimal values) repeats `text`
//!   with `$VAR` set to each value; `~LST(VAR, A, B, ...) text` and
//!   `~LST({V1, V2}, {A1, A2}, {B1, B2}) text` likewise for the listed values.
//! - `{` and `}` are words of their own wherever they are (`80{` is `80` then `{`);
//!   `"..."` is one word (quotes removed).
//!
//! What keepalived takes from its environment (the configuration id, the random seed) comes
//! from [`ParseOptions`], so reading a file is deterministic. Substituted words are located
//! at the reference they came from; lines repeated by `~SEQ` at the text after the `)`.
//!
//! This layer does not know which keywords exist or which open blocks (that is the parent
//! module's job, `structure`): it returns the lines and braces in order.

use core::ops::Range;
use std::path::{Path, PathBuf};

/// How deep includes may nest.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 8;
/// keepalived's line buffer (`MAXBUF`, lib/parser.h): a substitution that would make a line
/// longer stops there (`replace_param`: "would exceed maximum line length").
const MAXBUF: usize = 1024;
/// How many lines one `~SEQ` or `~LST` may produce (keepalived has no limit; rvs refuses
/// to build an unbounded configuration).
const MAX_REPEAT: i64 = 65_536;
/// Substitutions on one line before rvs stops (a definition that names itself would make
/// keepalived loop for ever).
const MAX_SUBST: usize = 256;

/// What keepalived takes from its environment when it reads its configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// keepalived's `-i` configuration id (keepalived's default: the host name up to its
    /// first dot; the caller fills it): `@ID` lines apply when it is ID, `@^ID` lines when
    /// it is not, and it is the value of `${_INSTANCE}`. None: no `@ID` line applies and
    /// every `@^ID` line does.
    pub config_id: Option<String>,
    /// Seed of `${_RANDOM}` (the same seed gives the same values).
    pub random_seed: u64,
}

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
    /// The text, quotes removed, parameters substituted.
    pub(crate) text: String,
    /// Where it is.
    pub(crate) loc: Loc,
    /// An unterminated string followed it on its line, and was dropped with the rest of the
    /// line (keepalived lib/parser.c alloc_strvec(): "Unmatched quote"). keepalived's script
    /// keywords re-read such a line and get nothing from it, which some handle apart from a
    /// line that simply has no value.
    pub(crate) cut: bool,
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

/// What the reader gives the structure: the words of a line, or a brace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ev {
    /// The words of one line (up to a brace), never empty.
    Line(Vec<Word>),
    /// `{`.
    Open(Loc),
    /// `}`.
    Close(Loc),
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

/// A line being read: its bytes, and for each byte the span of the source it came from
/// (a substituted value's bytes all come from the reference they replaced).
#[derive(Debug, Clone)]
struct Text {
    src: usize,
    b: Vec<u8>,
    o: Vec<Range<usize>>,
}

impl Text {
    fn new(src: usize, base: usize, bytes: &[u8]) -> Text {
        Text {
            src,
            b: bytes.to_vec(),
            o: (0..bytes.len()).map(|i| base + i..base + i + 1).collect(),
        }
    }

    fn len(&self) -> usize {
        self.b.len()
    }

    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn starts_with(&self, p: &[u8]) -> bool {
        self.b.starts_with(p)
    }

    fn contains(&self, c: u8) -> bool {
        self.b.contains(&c)
    }

    fn truncate(&mut self, n: usize) {
        self.b.truncate(n);
        self.o.truncate(n);
    }

    fn remove(&mut self, i: usize) {
        self.b.remove(i);
        self.o.remove(i);
    }

    fn drain_front(&mut self, n: usize) {
        self.b.drain(..n);
        self.o.drain(..n);
    }

    /// The span in the source of bytes `r` (empty: the point where they would be).
    fn origin(&self, r: Range<usize>) -> Range<usize> {
        if r.is_empty() {
            let at = match self.o.get(r.start) {
                Some(o) => o.start,
                None => self.o.last().map_or(0, |o| o.end),
            };
            return at..at;
        }
        let start = self.o[r.clone()].iter().map(|o| o.start).min().unwrap_or(0);
        let end = self.o[r].iter().map(|o| o.end).max().unwrap_or(start);
        start..end
    }

    fn loc(&self, r: Range<usize>) -> Loc {
        Loc {
            src: self.src,
            span: self.origin(r),
        }
    }

    /// Replace bytes `r` by `value`, located at `origin`.
    fn splice(&mut self, r: Range<usize>, value: &[u8], origin: Range<usize>) {
        self.b.splice(r.clone(), value.iter().copied());
        self.o.splice(r, std::iter::repeat_n(origin, value.len()));
    }

    /// Bytes `from..` as a text of their own.
    fn tail(&self, from: usize) -> Text {
        Text {
            src: self.src,
            b: self.b[from.min(self.len())..].to_vec(),
            o: self.o[from.min(self.len())..].to_vec(),
        }
    }

    fn string(&self, r: Range<usize>) -> String {
        String::from_utf8_lossy(&self.b[r]).into_owned()
    }

    fn skip_blanks(&self, mut i: usize) -> usize {
        while matches!(self.at(i), b' ' | b'\t') {
            i += 1;
        }
        i
    }

    fn trim_end_blanks(&mut self) {
        while matches!(self.b.last(), Some(b' ' | b'\t')) {
            self.b.pop();
            self.o.pop();
        }
    }
}

/// keepalived's `decomment()`: drop leading blanks, a comment (`!` or `#` outside double
/// quotes; `\!` and `\#` are the characters themselves) and trailing blanks; a `\` ending
/// the line is kept (it continues a parameter definition).
fn decomment(t: &mut Text) {
    let lead = t.skip_blanks(0);
    t.drain_front(lead);
    let mut quote = false;
    let mut skip: Option<usize> = None;
    let mut cont: Option<Range<usize>> = None;
    let mut i = 0;
    while i < t.len() {
        match t.b[i] {
            b'"' => {
                if skip.is_none() {
                    quote = !quote;
                }
                i += 1;
            }
            b'\\' => {
                if i + 1 < t.len() {
                    if !quote && matches!(t.b[i + 1], b'#' | b'!') {
                        t.remove(i);
                        i += 1;
                    } else {
                        i += 2;
                    }
                } else {
                    cont = Some(t.o[i].clone());
                    t.truncate(i);
                    break;
                }
            }
            b'!' | b'#' if !quote && skip.is_none() => {
                skip = Some(i);
                i += 1;
            }
            _ => i += 1,
        }
    }
    if let Some(k) = skip {
        t.truncate(k);
    }
    t.trim_end_blanks();
    if let Some(o) = cont {
        t.b.push(b'\\');
        t.o.push(o);
    }
}

/// C's `strtol(s, &end, 0)` from `i`: the value and where it stopped (`i` when no digits).
fn strtol0(b: &[u8], i: usize) -> (i64, usize) {
    let at = |k: usize| b.get(k).copied().unwrap_or(0);
    let mut k = i;
    while at(k).is_ascii_whitespace() {
        k += 1;
    }
    let neg = at(k) == b'-';
    if matches!(at(k), b'-' | b'+') {
        k += 1;
    }
    let (radix, start) =
        if at(k) == b'0' && matches!(at(k + 1), b'x' | b'X') && at(k + 2).is_ascii_hexdigit() {
            (16, k + 2)
        } else if at(k) == b'0' {
            (8, k)
        } else {
            (10, k)
        };
    let mut v: i64 = 0;
    let mut j = start;
    while let Some(d) = (at(j) as char).to_digit(radix) {
        v = v
            .saturating_mul(i64::from(radix))
            .saturating_add(i64::from(d));
        j += 1;
    }
    if j == start {
        return (0, i);
    }
    (if neg { -v } else { v }, j)
}

/// A parameter definition.
#[derive(Debug, Clone)]
struct Def {
    name: String,
    /// The value's lines (one unless `multiline`).
    lines: Vec<String>,
    multiline: bool,
    builtin: Option<Builtin>,
}

/// The definitions keepalived computes (`set_std_definitions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Pwd,
    Instance,
    Random,
}

/// Where the next lines come from before the file's own: a repetition or the remaining
/// lines of a multi-line value.
#[derive(Debug, Clone)]
enum Gen {
    Seq {
        var: String,
        next: i64,
        step: i64,
        last: i64,
        hex: bool,
        text: Text,
    },
    Lst {
        vars: Vec<String>,
        sets: Vec<Vec<String>>,
        at: usize,
        text: Text,
    },
    Lines {
        lines: Vec<String>,
        at: usize,
        src: usize,
        origin: Range<usize>,
    },
}

/// The physical lines of one file: (offset of the line, its bytes without the line break).
struct Cursor<'t> {
    text: &'t str,
    pos: usize,
}

impl Cursor<'_> {
    fn next_line(&mut self) -> Option<(usize, &[u8])> {
        if self.pos >= self.text.len() {
            return None;
        }
        let rest = &self.text[self.pos..];
        let len = rest.find('\n').map_or(rest.len(), |n| n + 1);
        let base = self.pos;
        self.pos += len;
        let line = rest[..len].trim_end_matches(['\n', '\r']);
        Some((base, line.as_bytes()))
    }
}

/// Parses the files of one configuration, expanding includes; parameters, sequences and
/// conditional lines carry from one file to the next, as in keepalived.
pub(crate) struct Parser<'r> {
    pub(crate) sources: Vec<Source>,
    pub(crate) findings: Vec<Finding>,
    reader: Option<&'r mut Reader<'r>>,
    /// Canonical paths of the files being read, outermost first.
    stack: Vec<PathBuf>,
    opts: ParseOptions,
    /// `_PWD` of each source.
    pwds: Vec<String>,
    defs: Vec<Def>,
    gens: Vec<Gen>,
    /// The multi-line definition being read.
    defining: Option<usize>,
    rng: u64,
}

impl<'r> Parser<'r> {
    /// A parser that reads includes with `reader` (None: includes are refused).
    pub(crate) fn new(reader: Option<&'r mut Reader<'r>>, opts: &ParseOptions) -> Self {
        let builtin = |name: &str, b: Option<Builtin>, v: &str| Def {
            name: name.to_string(),
            lines: vec![v.to_string()],
            multiline: false,
            builtin: b,
        };
        Parser {
            sources: Vec::new(),
            findings: Vec::new(),
            reader,
            stack: Vec::new(),
            opts: opts.clone(),
            pwds: Vec::new(),
            // keepalived lib/parser.c: set_std_definitions().
            defs: vec![
                builtin("_PWD", Some(Builtin::Pwd), ""),
                builtin("_INSTANCE", Some(Builtin::Instance), ""),
                builtin("_RANDOM", Some(Builtin::Random), ""),
                builtin("_HASH", None, "#"),
                builtin("_BANG", None, "!"),
            ],
            gens: Vec::new(),
            defining: None,
            rng: opts.random_seed,
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

    /// Read a file's text: its lines and braces, includes expanded.
    pub(crate) fn file(
        &mut self,
        path: String,
        text: String,
        canonical: Option<PathBuf>,
    ) -> Vec<Ev> {
        let src = self.sources.len();
        // keepalived changes to the directory of each file it opens (`open_conf_file`), so
        // `${_PWD}` (getcwd) is that file's directory.
        let dir = canonical
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .or_else(|| Path::new(&path).parent().map(Path::to_path_buf))
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| PathBuf::from("."));
        self.pwds.push(dir.display().to_string());
        if let Some(c) = &canonical {
            self.stack.push(c.clone());
        }
        self.sources.push(Source {
            path,
            text: text.clone(),
        });
        let mut cursor = Cursor {
            text: &text,
            pos: 0,
        };
        let mut out = Vec::new();
        while let Some(t) = self.logical(src, &mut cursor) {
            self.tokens(&t, &mut out);
        }
        if canonical.is_some() {
            self.stack.pop();
        }
        out
    }

    /// The next line to tokenize, after keepalived's `read_line`: repetitions and the lines
    /// of multi-line values first, then the file's; comments, conditions, definitions and
    /// substitutions done.
    fn logical(&mut self, src: usize, cursor: &mut Cursor<'_>) -> Option<Text> {
        loop {
            let mut t = match self.pull_gen() {
                Some(t) => t,
                None => {
                    let Some((base, raw)) = cursor.next_line() else {
                        self.end_definition();
                        return None;
                    };
                    if raw.is_empty() {
                        // An empty line ends a multi-line definition.
                        self.end_definition();
                        continue;
                    }
                    let mut t = Text::new(src, base, raw);
                    decomment(&mut t);
                    if t.len() == 0 {
                        continue;
                    }
                    t
                }
            };
            if let Some(d) = self.defining {
                let more = t.b.last() == Some(&b'\\');
                if more {
                    t.truncate(t.len() - 1);
                    t.trim_end_blanks();
                } else {
                    self.defining = None;
                }
                if t.len() > 0 {
                    let line = t.string(0..t.len());
                    self.defs[d].lines.push(line);
                }
                if !more && self.defs[d].lines.is_empty() {
                    self.defs[d].multiline = false;
                }
                continue;
            }
            let mut rounds = 0;
            loop {
                if t.at(0) == b'@' && !self.condition(&mut t) {
                    t.truncate(0);
                    break;
                }
                if t.at(0) == b'$' && self.definition(&t) {
                    t.truncate(0);
                    break;
                }
                if t.starts_with(b"~SEQ") || t.starts_with(b"~LST") {
                    let ok = if t.at(1) == b'S' {
                        self.add_seq(&t)
                    } else {
                        self.add_lst(&t)
                    };
                    if !ok {
                        let what = if t.at(1) == b'S' { "~SEQ" } else { "~LST" };
                        let loc = t.loc(0..t.len());
                        self.warn(
                            loc,
                            format!(
                                "invalid {what} specification: line ignored, as keepalived does"
                            ),
                        );
                    }
                    t.truncate(0);
                    break;
                }
                if t.at(0) == b'~' || !t.contains(b'$') {
                    break;
                }
                if !self.replace(&mut t) {
                    break;
                }
                decomment(&mut t);
                rounds += 1;
                let again = t.at(0) == b'@' || t.contains(b'$');
                if !again || rounds > MAX_SUBST {
                    break;
                }
            }
            if t.len() == 0 {
                continue;
            }
            return Some(t);
        }
    }

    fn end_definition(&mut self) {
        if let Some(d) = self.defining.take()
            && self.defs[d].lines.is_empty()
        {
            self.defs[d].multiline = false;
        }
    }

    /// The next repeated line, if a repetition or a multi-line value is being expanded.
    fn pull_gen(&mut self) -> Option<Text> {
        let g = self.gens.last_mut()?;
        let (t, done, set) = match g {
            Gen::Seq {
                var,
                next,
                step,
                last,
                hex,
                text,
            } => {
                let v = if *hex {
                    format!("{:x}", *next)
                } else {
                    format!("{}", *next)
                };
                let set = vec![(var.clone(), v)];
                *next += *step;
                let done = (*step > 0 && *next > *last) || (*step < 0 && *next < *last);
                (text.clone(), done, set)
            }
            Gen::Lst {
                vars,
                sets,
                at,
                text,
            } => {
                let set = vars
                    .iter()
                    .cloned()
                    .zip(sets[*at].iter().cloned())
                    .collect();
                *at += 1;
                (text.clone(), *at >= sets.len(), set)
            }
            Gen::Lines {
                lines,
                at,
                src,
                origin,
            } => {
                let line = lines[*at].as_bytes();
                let t = Text {
                    src: *src,
                    b: line.to_vec(),
                    o: vec![origin.clone(); line.len()],
                };
                *at += 1;
                (t, *at >= lines.len(), Vec::new())
            }
        };
        if done {
            self.gens.pop();
        }
        for (name, value) in set {
            self.set_definition(&name, value);
        }
        Some(t)
    }

    /// `@ID rest` / `@^ID rest`: whether the line applies; if it does, `rest` is left.
    fn condition(&mut self, t: &mut Text) -> bool {
        let (rev, ofs) = if t.at(1) == b'^' {
            (true, 2)
        } else {
            (false, 1)
        };
        let Some(sp) = t.b[ofs..].iter().position(|&c| c == b' ' || c == b'\t') else {
            return false;
        };
        let id = &t.b[ofs..ofs + sp];
        let matches = self
            .opts
            .config_id
            .as_deref()
            .is_some_and(|c| c.as_bytes() == id);
        if matches == rev {
            return false;
        }
        let rest = t.skip_blanks(ofs + sp);
        t.drain_front(rest);
        true
    }

    /// keepalived's `check_definition`: `$NAME=value` defines NAME (true), anything else
    /// is not a definition (false).
    fn definition(&mut self, t: &Text) -> bool {
        let b = &t.b;
        if !(t.at(1).is_ascii_alphabetic() || t.at(1) == b'_') {
            return false;
        }
        let mut p = 2;
        while p < b.len() && b[p] != b'=' {
            if !(b[p].is_ascii_alphanumeric() || b[p] == b'_') {
                return false;
            }
            p += 1;
        }
        if t.at(p) != b'=' {
            return false;
        }
        let name = t.string(1..p);
        let mut value = t.tail(t.skip_blanks(p + 1));
        let multiline = value.b.last() == Some(&b'\\');
        if multiline {
            value.truncate(value.len() - 1);
            value.trim_end_blanks();
        }
        let mut lines = Vec::new();
        if !multiline || value.len() > 0 {
            lines.push(value.string(0..value.len()));
        }
        let d = self.set_definition(&name, String::new());
        self.defs[d].lines = lines;
        self.defs[d].multiline = multiline;
        if multiline {
            self.defining = Some(d);
        }
        true
    }

    /// Define or redefine NAME (a definition replaces a built-in of the same name).
    fn set_definition(&mut self, name: &str, value: String) -> usize {
        let d = match self.defs.iter().position(|d| d.name == name) {
            Some(d) => d,
            None => {
                self.defs.push(Def {
                    name: name.to_string(),
                    lines: Vec::new(),
                    multiline: false,
                    builtin: None,
                });
                self.defs.len() - 1
            }
        };
        let def = &mut self.defs[d];
        def.lines = vec![value];
        def.multiline = false;
        def.builtin = None;
        d
    }

    /// keepalived's `replace_param`: substitute every known `$NAME` / `${NAME}` (rescanning
    /// each value). Whether anything was replaced.
    fn replace(&mut self, t: &mut Text) -> bool {
        let mut found = false;
        let mut pos = 0;
        let mut count = 0;
        while let Some(i) = t.b[pos..].iter().position(|&c| c == b'$').map(|i| pos + i) {
            if i + 1 >= t.len() {
                break;
            }
            let Some((end, d, params)) = self.reference(t, i) else {
                pos = i + 1;
                continue;
            };
            let (first, rest) = self.value(d, params, t.src);
            if t.len() - (end - i) + first.len() >= MAXBUF {
                let loc = t.loc(i..end);
                self.warn(
                    loc,
                    format!(
                        "parameter substitution stopped: the line would exceed {MAXBUF} bytes \
                         (keepalived's limit); the rest of the line is kept as written"
                    ),
                );
                return false;
            }
            let origin = t.origin(i..end);
            let tilde = first.trim_start_matches([' ', '\t']).starts_with('~');
            t.splice(i..end, first.as_bytes(), origin.clone());
            found = true;
            if !rest.is_empty() {
                self.gens.push(Gen::Lines {
                    lines: rest,
                    at: 0,
                    src: t.src,
                    origin,
                });
            }
            count += 1;
            if tilde {
                break;
            }
            if count > MAX_SUBST {
                let loc = t.loc(i..(i + first.len()).min(t.len()));
                self.warn(
                    loc,
                    format!(
                        "parameter substitution stopped after {MAX_SUBST} replacements on one \
                         line (a definition that refers to itself?)"
                    ),
                );
                break;
            }
            pos = i;
        }
        found
    }

    /// The reference at `t[i] == '$'`: its end, the definition, and `${NAME params}`'s
    /// parameters (keepalived's `find_definition`).
    fn reference(&self, t: &Text, i: usize) -> Option<(usize, usize, Option<String>)> {
        let mut j = i + 1;
        let braces = t.at(j) == b'{';
        if braces {
            j += 1;
        }
        let start = j;
        if !(t.at(j).is_ascii_alphabetic() || t.at(j) == b'_') {
            return None;
        }
        while t.at(j).is_ascii_alphanumeric() || t.at(j) == b'_' {
            j += 1;
        }
        let name = &t.b[start..j];
        let mut params = None;
        let end = if braces {
            let mut first: Option<usize> = None;
            let mut last = j;
            let ps = j;
            while t.at(j) == b' ' || t.at(j).is_ascii_digit() {
                if t.at(j) != b' ' {
                    first.get_or_insert(j);
                    last = j;
                }
                j += 1;
            }
            if let Some(f) = first {
                if last + 1 != j {
                    return None;
                }
                params = Some(t.string(f..last + 1));
            }
            let _ = ps;
            if t.at(j) != b'}' {
                return None;
            }
            j + 1
        } else {
            if !matches!(t.at(j), b' ' | b'\t' | b',' | b')' | 0) {
                return None;
            }
            j
        };
        let allow_multiline = end == t.len();
        let d = self
            .defs
            .iter()
            .position(|d| d.name.as_bytes() == name && (allow_multiline || !d.multiline))?;
        if params.is_some() && self.defs[d].builtin != Some(Builtin::Random) {
            return None;
        }
        Some((end, d, params))
    }

    /// A definition's value: its first line and the lines that follow it.
    fn value(&mut self, d: usize, params: Option<String>, src: usize) -> (String, Vec<String>) {
        let def = &self.defs[d];
        match def.builtin {
            Some(Builtin::Pwd) => (self.pwds.get(src).cloned().unwrap_or_default(), Vec::new()),
            Some(Builtin::Instance) => {
                (self.opts.config_id.clone().unwrap_or_default(), Vec::new())
            }
            Some(Builtin::Random) => {
                // keepalived lib/parser.c get_random(): `random() % (max - min + 1) + min`,
                // 0..=32767 unless `${_RANDOM MIN [MAX]}`.
                let (mut min, mut max) = (0u64, 32_767u64);
                if let Some(p) = params {
                    let mut it = p.split_whitespace().filter_map(|n| n.parse::<u64>().ok());
                    if let Some(a) = it.next() {
                        min = a;
                    }
                    if let Some(b) = it.next() {
                        max = b;
                    }
                }
                let v = if max < min {
                    min
                } else {
                    min + self.random() % (max - min + 1)
                };
                (v.to_string(), Vec::new())
            }
            None => {
                let mut lines = def.lines.clone();
                if lines.is_empty() {
                    return (String::new(), Vec::new());
                }
                let first = lines.remove(0);
                (first, lines)
            }
        }
    }

    /// splitmix64: deterministic for a given seed.
    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) >> 33
    }

    /// keepalived's `add_seq`: `~SEQ(VAR, [START,] [STEP,] END) text`.
    fn add_seq(&mut self, t: &Text) -> bool {
        let mut p = 4;
        let hex = t.at(p) == b'x';
        if hex {
            p += 1;
        }
        p = t.skip_blanks(p);
        if t.at(p) != b'(' {
            return false;
        }
        p = t.skip_blanks(p + 1);
        let var_start = p;
        while !matches!(t.at(p), b' ' | b'\t' | b',' | b')' | 0) {
            p += 1;
        }
        let var = t.string(var_start..p);
        p = t.skip_blanks(p);
        if matches!(t.at(p), 0 | b')') || p == var_start {
            return false;
        }
        p = t.skip_blanks(p + 1);
        let Some(close) = t.b[p..].iter().position(|&c| c == b')').map(|c| p + c) else {
            return false;
        };
        // The parameters may be definitions.
        let mut params = Text {
            src: t.src,
            b: t.b[p..=close].to_vec(),
            o: t.o[p..=close].to_vec(),
        };
        if params.contains(b'$') {
            let gens = self.gens.len();
            self.replace(&mut params);
            if self.gens.len() != gens {
                self.gens.truncate(gens);
                return false;
            }
        }
        let b = &params.b;
        let skip = |mut k: usize| {
            while matches!(b.get(k), Some(b' ' | b'\t')) {
                k += 1;
            }
            k
        };
        let at = |k: usize| b.get(k).copied().unwrap_or(0);
        let (one, k) = strtol0(b, 0);
        let k = skip(k);
        let (start, step, end) = if at(k) == b')' {
            let end = one;
            (
                if end < 0 { -1 } else { 1 },
                if end < 1 { -1 } else { 1 },
                end,
            )
        } else {
            if at(k) != b',' {
                return false;
            }
            let (two, k) = strtol0(b, k + 1);
            let k = skip(k);
            if at(k) == b')' {
                (one, if one <= two { 1 } else { -1 }, two)
            } else {
                if at(k) != b',' {
                    return false;
                }
                let (three, k) = strtol0(b, k + 1);
                if at(skip(k)) != b')' {
                    return false;
                }
                if two == 0 || (one < three && two < 0) || (one > three && two > 0) {
                    return false;
                }
                (one, two, three)
            }
        };
        if hex && (start < 0 || end < 0) {
            return false;
        }
        let count = (end - start) / step + 1;
        if count > MAX_REPEAT {
            let loc = t.loc(0..t.len());
            self.error(
                loc,
                format!("~SEQ would repeat its line {count} times"),
                Some(&format!("at most {MAX_REPEAT} repetitions")),
            );
            return true;
        }
        let text = t.tail(t.skip_blanks(close + 1));
        self.gens.push(Gen::Seq {
            var,
            next: start,
            step,
            last: end,
            hex,
            text,
        });
        true
    }

    /// keepalived's `add_lst`: `~LST(VAR, A, B, ...) text` or
    /// `~LST({V1, V2}, {A1, A2}, {B1, B2}) text`.
    fn add_lst(&mut self, t: &Text) -> bool {
        let at = |k: usize| t.at(k);
        let word_end = |mut k: usize, stops: &[u8]| {
            while !stops.contains(&at(k)) && at(k) != 0 {
                k += 1;
            }
            k
        };
        let mut p = t.skip_blanks(4);
        if at(p) != b'(' {
            return false;
        }
        p = t.skip_blanks(p + 1);
        let mut end_char = b',';
        if at(p) == b'{' {
            end_char = b'}';
            p = t.skip_blanks(p + 1);
        }
        let mut vars = Vec::new();
        loop {
            let s = p;
            p = word_end(p, b" \t,}");
            vars.push(t.string(s..p));
            p = t.skip_blanks(p);
            if at(p) == end_char {
                break;
            }
            if at(p) != b',' {
                return false;
            }
            p = t.skip_blanks(p + 1);
        }
        if at(p) == b'}' {
            p = t.skip_blanks(p + 1);
        }
        if at(p) != b',' {
            return false;
        }
        p = t.skip_blanks(p + 1);
        let mut sets = Vec::new();
        loop {
            let mut end_char = b',';
            if at(p) == b'{' {
                end_char = b'}';
                p = t.skip_blanks(p + 1);
            }
            let mut values = Vec::new();
            loop {
                let s = p;
                p = word_end(p, b" \t,})");
                values.push(t.string(s..p));
                p = t.skip_blanks(p);
                if at(p) == end_char || (at(p) == b')' && end_char == b',') {
                    break;
                }
                if at(p) != b',' {
                    return false;
                }
                p = t.skip_blanks(p + 1);
                if values.len() >= vars.len() {
                    return false;
                }
            }
            values.resize(vars.len(), String::new());
            sets.push(values);
            if sets.len() as i64 > MAX_REPEAT {
                return false;
            }
            if at(p) == b'}' && end_char == b'}' {
                p = t.skip_blanks(p + 1);
            }
            if at(p) == b')' {
                break;
            }
            if at(p) != b',' {
                return false;
            }
            p = t.skip_blanks(p + 1);
        }
        if vars.is_empty() || sets.is_empty() {
            return false;
        }
        let text = t.tail(t.skip_blanks(p + 1));
        self.gens.push(Gen::Lst {
            vars,
            sets,
            at: 0,
            text,
        });
        true
    }

    /// Split a logical line into lines of words and braces; `include` lines are expanded.
    fn tokens(&mut self, t: &Text, out: &mut Vec<Ev>) {
        let b = &t.b;
        let mut words: Vec<Word> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if matches!(c, b' ' | b'\t' | b'\r' | 0x0b | 0x0c) {
                i += 1;
                continue;
            }
            let start = i;
            match c {
                b'{' | b'}' => {
                    i += 1;
                    if !words.is_empty() {
                        self.line(std::mem::take(&mut words), out);
                    }
                    let loc = t.loc(start..i);
                    out.push(if c == b'{' {
                        Ev::Open(loc)
                    } else {
                        Ev::Close(loc)
                    });
                }
                b'"' => {
                    i += 1;
                    let mut s: Vec<u8> = Vec::new();
                    let mut closed = false;
                    while i < b.len() {
                        if b[i] == b'"' {
                            i += 1;
                            closed = true;
                            break;
                        }
                        if b[i] == b'\\' && matches!(b.get(i + 1), Some(b'"' | b'\\')) {
                            s.push(b[i + 1]);
                            i += 2;
                            continue;
                        }
                        s.push(b[i]);
                        i += 1;
                    }
                    // keepalived lib/parser.c alloc_strvec(): "Unmatched quote" is logged and
                    // the line's words before the quote are kept; the string and the rest of the
                    // line are dropped. What a keyword left without a value means is its
                    // handler's business (see `Word::cut`).
                    if !closed {
                        if let Some(last) = words.last_mut() {
                            last.cut = true;
                        }
                        let loc = t.loc(start..i);
                        self.warn(
                            loc,
                            "unterminated string: it and the rest of the line are ignored, as \
                             keepalived ignores them (the words before it are read)",
                        );
                        continue;
                    }
                    words.push(Word {
                        text: String::from_utf8_lossy(&s).into_owned(),
                        loc: t.loc(start..i),
                        cut: false,
                    });
                }
                _ => {
                    while i < b.len() && !matches!(b[i], b' ' | b'\t' | b'\r' | b'{' | b'}') {
                        i += 1;
                    }
                    words.push(Word {
                        text: t.string(start..i),
                        loc: t.loc(start..i),
                        cut: false,
                    });
                }
            }
        }
        if !words.is_empty() {
            self.line(words, out);
        }
    }

    /// A line of words: `include` is expanded, anything else kept.
    fn line(&mut self, words: Vec<Word>, out: &mut Vec<Ev>) {
        if words[0].text == "include" {
            self.include(out, &words);
            return;
        }
        out.push(Ev::Line(words));
    }

    fn include(&mut self, out: &mut Vec<Ev>, words: &[Word]) {
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
                    let evs = self.file(shown, text, Some(canonical));
                    out.extend(evs);
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

    fn read(text: &str, opts: &ParseOptions) -> (Vec<Ev>, Vec<Finding>) {
        let mut p = Parser::new(None, opts);
        let e = p.file("t".into(), text.into(), None);
        (e, p.findings)
    }

    /// The lines as text: words joined by one space, braces as themselves.
    fn lines(text: &str, id: Option<&str>) -> Vec<String> {
        let opts = ParseOptions {
            config_id: id.map(str::to_string),
            random_seed: 7,
        };
        let (evs, f) = read(text, &opts);
        assert!(f.is_empty(), "{f:?}");
        evs.iter()
            .map(|e| match e {
                Ev::Line(w) => w
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                Ev::Open(_) => "{".to_string(),
                Ev::Close(_) => "}".to_string(),
            })
            .collect()
    }

    #[test]
    fn words_braces_comments_and_quotes() {
        assert_eq!(
            lines(
                "a 1 2 ! c\nb { x \"y # z\" # c\n  u{v}w\n}\nc#d e\nf \\#g\n",
                None
            ),
            [
                "a 1 2", "b", "{", "x y # z", "u", "{", "v", "}", "w", "}", "c", "f #g"
            ]
        );
    }

    #[test]
    fn conditional_lines() {
        let text = "@high a 1\n@^high b 2\n  @low c\n@high\n";
        assert_eq!(lines(text, Some("high")), ["a 1"]);
        assert_eq!(lines(text, Some("low")), ["b 2", "c"]);
        assert_eq!(lines(text, None), ["b 2"]);
    }

    #[test]
    fn definitions_and_substitution() {
        let text = "$IP=10.0.0.1\n$PORT=80\n$ADDR=$IP $PORT\nvs $ADDR\nx ${IP}:${PORT} $IPx ($PORT) $NONE\n\
                    $IP=10.0.0.2\ny $IP,$PORT\n";
        assert_eq!(
            lines(text, None),
            [
                "vs 10.0.0.1 80",
                "x 10.0.0.1:80 $IPx (80) $NONE",
                "y 10.0.0.2,80"
            ]
        );
    }

    #[test]
    fn multiline_definitions() {
        let text = "$RS=real_server 1.1.1.1 80 { \\\n  weight 2 \\\n}\n\nvs {\n$RS\n}\nz $RS x\n";
        assert_eq!(
            lines(text, None),
            [
                "vs",
                "{",
                "real_server 1.1.1.1 80",
                "{",
                "weight 2",
                "}",
                "}",
                "z $RS x"
            ]
        );
    }

    #[test]
    fn builtins() {
        // `${_HASH}` gives a `#`, which starts a comment unless it is quoted.
        let l = lines(
            "a ${_INSTANCE} \"${_HASH}\" ${_BANG}x\nb ${_HASH} c\n",
            Some("lb1"),
        );
        assert_eq!(l, ["a lb1 #", "b"]);
        let r = lines("r ${_RANDOM 5 6} ${_RANDOM}\n", None);
        let w: Vec<u64> = r[0]
            .split(' ')
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect();
        assert!((5..=6).contains(&w[0]) && w[1] <= 32767, "{r:?}");
        assert_eq!(
            r,
            lines("r ${_RANDOM 5 6} ${_RANDOM}\n", None),
            "deterministic"
        );
        assert_eq!(lines("p $_PWD\n", None), ["p ."]);
        assert_eq!(lines("$_HASH=h\nq $_HASH\n", None), ["q h"]);
    }

    #[test]
    fn sequences_and_lists() {
        assert_eq!(lines("~SEQ(i, 3) a $i\n", None), ["a 1", "a 2", "a 3"]);
        assert_eq!(
            lines("~SEQ(i, 5, -2, 1) b $i\n", None),
            ["b 5", "b 3", "b 1"]
        );
        assert_eq!(lines("~SEQx(i, 9, 11) c $i\n", None), ["c 9", "c a", "c b"]);
        assert_eq!(
            lines("$N=2\n~SEQ(i, 1, $N) ~SEQ(j, $i) d ${i}${j} $i$j\n", None),
            ["d 11 $i1", "d 21 $i1", "d 22 $i2"]
        );
        assert_eq!(lines("~LST(x, a, b) e $x\n", None), ["e a", "e b"]);
        assert_eq!(
            lines("~LST({x, y}, {1, 2}, {3}) f ${x}-${y}.\n", None),
            ["f 1-2.", "f 3-."]
        );
        let (_, f) = read("~SEQ(i) x\n", &ParseOptions::default());
        assert!(f[0].message.contains("invalid ~SEQ"), "{f:?}");
    }

    #[test]
    fn substituted_words_are_located_at_the_reference() {
        let (evs, _) = read("$P=8080\nport $P\n", &ParseOptions::default());
        let Ev::Line(w) = &evs[0] else { panic!() };
        assert_eq!(w[1].text, "8080");
        assert_eq!(w[1].loc.span, 13..15);
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
