//! Diagnostics: a configuration problem located at file:line:column, rendered like rustc.
//!
//! A [`Diagnostic`] carries the byte span it blames and what was expected there; its
//! `Display` prints `path:line:col: error: message`, the offending source line and carets
//! under the span. It does not decide what is an error: the parsers do.

use core::fmt;
use core::ops::Range;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// The file is refused.
    Error,
    /// The file is accepted, but something in it is ignored or questionable.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// A problem in a configuration file: the operator's to fix, located precisely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file's path as given to the parser.
    pub path: String,
    /// 1-based line of the span's start.
    pub line: usize,
    /// 1-based column (in characters) of the span's start.
    pub column: usize,
    /// Byte range in the file that the diagnostic blames.
    pub span: Range<usize>,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// What the parser expected there, if it can say.
    pub expected: Option<String>,
    /// The offending source line (without its line break), kept for rendering.
    pub source_line: String,
}

impl Diagnostic {
    /// A diagnostic for `span` in `text`, with line and column computed from the span.
    pub fn new(
        text: &str,
        path: &str,
        span: Range<usize>,
        severity: Severity,
        message: impl Into<String>,
        expected: Option<String>,
    ) -> Diagnostic {
        let start = floor_char(text, span.start.min(text.len()));
        let end = floor_char(text, span.end.clamp(start, text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].bytes().filter(|&b| b == b'\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let source_line = text[line_start..line_end]
            .trim_end_matches('\r')
            .to_string();
        Diagnostic {
            path: path.to_string(),
            line,
            column,
            span: start..end,
            severity,
            message: message.into(),
            expected,
            source_line,
        }
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Where a value was written, kept inside parsed data so that a check made later, once the
/// whole file is known (a name that must refer to a block defined elsewhere, a conflict
/// between two blocks), can still blame file:line:column without the file's text.
///
/// Its `Debug` is the short `path:line:column`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Place {
    /// The file's path as given to the parser.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// Byte range in the file.
    pub span: Range<usize>,
    /// The source line (without its line break).
    pub source_line: String,
}

impl Place {
    /// The place of `span` in `text` (named `path`).
    pub fn new(text: &str, path: &str, span: Range<usize>) -> Place {
        let d = Diagnostic::new(text, path, span, Severity::Error, "", None);
        Place {
            path: d.path,
            line: d.line,
            column: d.column,
            span: d.span,
            source_line: d.source_line,
        }
    }

    /// A diagnostic blaming this place.
    pub fn diagnostic(
        &self,
        severity: Severity,
        message: impl Into<String>,
        expected: Option<String>,
    ) -> Diagnostic {
        Diagnostic {
            path: self.path.clone(),
            line: self.line,
            column: self.column,
            span: self.span.clone(),
            severity,
            message: message.into(),
            expected,
            source_line: self.source_line.clone(),
        }
    }

    /// An error blaming this place.
    pub fn error(&self, message: impl Into<String>, expected: impl Into<String>) -> Diagnostic {
        self.diagnostic(Severity::Error, message, Some(expected.into()))
    }

    /// A warning blaming this place.
    pub fn warning(&self, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Severity::Warning, message, None)
    }
}

impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.path, self.line, self.column)
    }
}

fn floor_char(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}: {}",
            self.path, self.line, self.column, self.severity, self.message
        )?;
        let num = self.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "{pad} |")?;
        writeln!(f, "{num} | {}", self.source_line)?;
        // Under the span: keep tabs of the line's prefix so carets line up.
        let prefix: String = self
            .source_line
            .chars()
            .take(self.column - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let rest_of_line = self
            .source_line
            .chars()
            .count()
            .saturating_sub(self.column - 1);
        let span_chars = self.span_chars();
        let width = span_chars.min(rest_of_line).max(1);
        write!(f, "{pad} | {prefix}{}", "^".repeat(width))?;
        if let Some(e) = &self.expected {
            write!(f, " expected {e}")?;
        }
        writeln!(f)
    }
}

impl Diagnostic {
    fn span_chars(&self) -> usize {
        // The span length in characters, counted on the stored line from the column on.
        let len = self.span.end - self.span.start;
        let mut bytes = 0;
        let mut chars = 0;
        for c in self.source_line.chars().skip(self.column - 1) {
            if bytes >= len {
                break;
            }
            bytes += c.len_utf8();
            chars += 1;
        }
        chars
    }
}

/// Render several diagnostics one after the other, separated by blank lines.
pub fn render_all(diags: &[Diagnostic]) -> String {
    diags
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A file read with bytes that are not UTF-8 replaced by U+FFFD: a warning at the first
/// replacement outside a comment (`#`, or `!` in keepalived.conf), where the value read is
/// not what the file holds; None when every one is inside a comment (the original tools
/// read bytes, so a comment in another encoding changes nothing).
pub fn non_utf8(text: &str, path: &str, bang_comments: bool) -> Option<Diagnostic> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let comment = line
            .find(|c| c == '#' || (bang_comments && c == '!'))
            .unwrap_or(line.len());
        if let Some(at) = line[..comment].find('\u{FFFD}') {
            let start = offset + at;
            return Some(Diagnostic::new(
                text,
                path,
                start..start + '\u{FFFD}'.len_utf8(),
                Severity::Warning,
                "bytes that are not UTF-8 are read as U+FFFD here: this value is not what the \
                 file holds (save the file as UTF-8)",
                None,
            ));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_line_column_and_carets() {
        let text = "a = 1\n\tscheduler = wlcc\n";
        let start = text.find("wlcc").unwrap();
        let d = Diagnostic::new(
            text,
            "x.cf",
            start..start + 4,
            Severity::Error,
            "unknown scheduler `wlcc`",
            Some("`wlc`".into()),
        );
        assert_eq!((d.line, d.column), (2, 14));
        assert_eq!(
            d.to_string(),
            "x.cf:2:14: error: unknown scheduler `wlcc`\n  |\n2 | \tscheduler = wlcc\n  | \t            ^^^^ expected `wlc`\n"
        );
    }

    #[test]
    fn a_place_renders_like_the_diagnostic_made_at_once() {
        let text = "a = 1\n\tscheduler = wlcc\n";
        let start = text.find("wlcc").unwrap();
        let now = Diagnostic::new(
            text,
            "x.cf",
            start..start + 4,
            Severity::Error,
            "unknown scheduler `wlcc`",
            Some("`wlc`".into()),
        );
        let place = Place::new(text, "x.cf", start..start + 4);
        assert_eq!(format!("{place:?}"), "x.cf:2:14");
        assert_eq!(place.error("unknown scheduler `wlcc`", "`wlc`"), now);
        let w = place.warning("w");
        assert_eq!((w.severity, w.line, w.column), (Severity::Warning, 2, 14));
    }

    #[test]
    fn empty_span_at_eof_gets_one_caret() {
        let d = Diagnostic::new("ab", "f", 2..2, Severity::Warning, "m", None);
        assert_eq!((d.line, d.column), (1, 3));
        assert!(d.to_string().ends_with("  ^\n"));
    }
}
