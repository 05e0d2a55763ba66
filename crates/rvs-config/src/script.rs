//! Scripts as keepalived reads them: the command line cut into an argument vector (keepalived
//! lib/parser.c `alloc_strvec_quoted_escaped()`, used by lib/notify.c
//! `set_script_params_array()`), the user a script runs as (`USER [GROUP]`), and the global
//! `script_user` / `enable_script_security` settings.
//!
//! Pure text: looking users up, checking files and running anything is the daemon's.

/// A script and who it runs as: keepalived's `notify_master "/path/x.sh arg" [USER [GROUP]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The command line, as written (one configuration word).
    pub command: String,
    /// `USER [GROUP]` to run it as \[the global `script_user`\].
    pub user: Option<String>,
}

impl Script {
    /// A script run as the default script user.
    pub fn new(command: impl Into<String>) -> Script {
        Script {
            command: command.into(),
            user: None,
        }
    }
}

/// keepalived's `global_defs` settings for every script.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScriptPolicy {
    /// `script_user USER [GROUP]`: who scripts run as when they name no user \[keepalived:
    /// `keepalived_script` if that user exists, else the daemon's own user\].
    pub script_user: Option<String>,
    /// `enable_script_security`: a script that is writable by anyone but root (or lies in a
    /// directory that is), run as root, is not run at all.
    pub enable_script_security: bool,
}

/// `USER [GROUP]` split into the user and the group, if any (more words are ignored, as
/// keepalived's `set_script_uid_gid()` ignores them).
pub fn user_group(text: &str) -> Option<(&str, Option<&str>)> {
    let mut words = text.split_whitespace();
    let user = words.next()?;
    Some((user, words.next()))
}

/// Cut a command line into words as keepalived does (`alloc_strvec_quoted_escaped()`):
/// blanks separate words; `"..."` and `'...'` quote (inside them only the same quote and
/// `\` are special); outside single quotes a backslash escapes the next character, with the
/// C escapes `\a \b \E \f \n \r \t \v`, `\xHH..`, octal `\NNN` and `\cX` (control-X).
/// An unterminated quote or a trailing `\` is an error (keepalived drops the script).
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let b = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    let blank = |c: u8| c == b' ' || c == b'\t' || c == b'\n' || c == b'\r';
    while i < b.len() {
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let mut word: Vec<u8> = Vec::new();
        let mut quote: Option<u8> = None;
        while i < b.len() {
            let c = b[i];
            match (quote, c) {
                (_, b'\\') => {
                    i += 1;
                    let Some(&e) = b.get(i) else {
                        return Err(format!("missing escape character at end: {line:?}"));
                    };
                    let (ch, used) = escape(&b[i..], e);
                    word.push(ch);
                    i += used;
                }
                (Some(q), c) if c == q => {
                    quote = None;
                    i += 1;
                }
                (Some(_), c) => {
                    word.push(c);
                    i += 1;
                }
                (None, b'"' | b'\'') => {
                    quote = Some(c);
                    i += 1;
                }
                (None, c) if blank(c) => break,
                (None, c) => {
                    word.push(c);
                    i += 1;
                }
            }
        }
        if let Some(q) = quote {
            return Err(format!(
                "string {line:?}: missing terminating {}",
                q as char
            ));
        }
        words.push(String::from_utf8_lossy(&word).into_owned());
    }
    Ok(words)
}

/// One escape starting at `s[0] == e` (the character after `\`): the byte it stands for and
/// how many bytes of `s` it used.
fn escape(s: &[u8], e: u8) -> (u8, usize) {
    match e {
        b'x' if s.get(1).is_some_and(u8::is_ascii_hexdigit) => {
            // keepalived takes every hex digit that follows, keeping the low byte.
            let mut v: u8 = 0;
            let mut n = 1;
            while let Some(d) = s.get(n).and_then(|c| (*c as char).to_digit(16)) {
                v = v.wrapping_shl(4) | d as u8;
                n += 1;
            }
            (v, n)
        }
        b'c' if s.len() > 1 => (s[1] & 0x1f, 2),
        b'0'..=b'7' => {
            let mut v: u8 = e - b'0';
            let mut n = 1;
            while n < 3 && s.get(n).is_some_and(|c| (b'0'..=b'7').contains(c)) {
                v = v.wrapping_shl(3).wrapping_add(s[n] - b'0');
                n += 1;
            }
            (v, n)
        }
        b'a' => (0x07, 1),
        b'b' => (0x08, 1),
        b'E' => (0x1b, 1),
        b'f' => (0x0c, 1),
        b'n' => (b'\n', 1),
        b'r' => (b'\r', 1),
        b't' => (b'\t', 1),
        b'v' => (0x0b, 1),
        other => (other, 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        split_words(s).unwrap()
    }

    #[test]
    fn words_quotes_and_escapes_as_keepalived() {
        assert_eq!(w("/bin/x.sh a  b\tc"), ["/bin/x.sh", "a", "b", "c"]);
        assert_eq!(w("  /bin/x 'a b' \"c d\" "), ["/bin/x", "a b", "c d"]);
        // Quotes join with what touches them; the other quote is literal inside.
        assert_eq!(w("a'b c'd \"it's\""), ["ab cd", "it's"]);
        assert_eq!(
            w(r"a\ b c\\d \x41\x42 \101 \n"),
            ["a b", r"c\d", "AB", "A", "\n"]
        );
        assert_eq!(w(r#""a\"b" 'c\'d'"#), ["a\"b", "c'd"]);
        assert_eq!(w(r"\cA"), ["\u{1}"]);
        assert_eq!(w("''"), [""]);
        assert!(w("").is_empty());
        assert!(
            split_words("/bin/x 'open")
                .unwrap_err()
                .contains("missing terminating '")
        );
        assert!(split_words("/bin/x \\").is_err());
    }

    #[test]
    fn user_and_group() {
        assert_eq!(user_group("nobody"), Some(("nobody", None)));
        assert_eq!(
            user_group(" nobody  nogroup x"),
            Some(("nobody", Some("nogroup")))
        );
        assert_eq!(user_group(""), None);
    }
}
