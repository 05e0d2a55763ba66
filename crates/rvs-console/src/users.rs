//! The users file: console users with argon2id password hashes, and API tokens stored as
//! SHA-256 digests, each with a [`Role`].
//!
//! One entry a line, `#` starts a comment:
//!
//! ```text
//! user NAME ROLE $argon2id$v=19$m=19456,t=2,p=1$SALT$HASH
//! token NAME ROLE sha256:HEX
//! ```
//!
//! Piranha's `piranha-passwd` wrote one password for one user (`piranha`), and its tool
//! shipped with a default; here there is no default: the console refuses to start until
//! `rvs console passwd` has written a user. Tokens are 32 random bytes, so a fast digest
//! is enough to keep a stolen file from giving them away; passwords get argon2id.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;

/// What a user or token may do; each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read only: the live page, the API's GET routes, the audit page.
    Viewer,
    /// And ready / drain / maintenance / weight on real servers.
    Operator,
    /// And everything else (configuration, users, rollback).
    Admin,
}

impl Role {
    /// The role's name in the file.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    /// From its name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "viewer" => Role::Viewer,
            "operator" => Role::Operator,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A user: name, role, argon2id PHC string.
    User(String, Role, String),
    /// A token: name, role, lowercase hex SHA-256 of the token.
    Token(String, Role, String),
}

/// The users file, read.
#[derive(Debug, Clone, Default)]
pub struct Users {
    entries: Vec<Entry>,
}

/// A name is letters, digits, `.`, `_` and `-`, 1 to 64 of them.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Users {
    /// Read `path`; a line that is not an entry is an error naming it (file:line).
    pub fn load(path: &Path) -> Result<Users, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Users::parse(&text).map_err(|(line, why)| format!("{}:{line}: {why}", path.display()))
    }

    /// Parse the file's text; errors carry the 1-based line.
    pub fn parse(text: &str) -> Result<Users, (usize, String)> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let w: Vec<&str> = line.split_whitespace().collect();
            let bad = |why: &str| (i + 1, why.to_string());
            let [kind, name, role, secret] = w[..] else {
                return Err(bad("expected `user|token NAME ROLE SECRET`"));
            };
            if !valid_name(name) {
                return Err(bad("bad name"));
            }
            let role = Role::parse(role).ok_or_else(|| bad("role is viewer, operator or admin"))?;
            entries.push(match kind {
                "user" => {
                    let h = PasswordHash::new(secret).map_err(|_| bad("not a PHC hash string"))?;
                    if h.algorithm.as_str() != "argon2id" {
                        return Err(bad("the hash is not argon2id"));
                    }
                    Entry::User(name.into(), role, secret.into())
                }
                "token" => {
                    let hex = secret
                        .strip_prefix("sha256:")
                        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                        .ok_or_else(|| bad("expected sha256:HEX"))?;
                    Entry::Token(name.into(), role, hex.to_ascii_lowercase())
                }
                _ => return Err(bad("expected `user` or `token`")),
            });
        }
        Ok(Users { entries })
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# rvs console users (rvs console passwd / rvs console token); do not edit by hand\n",
        );
        for e in &self.entries {
            let _ = match e {
                Entry::User(n, r, h) => writeln!(s, "user {n} {} {h}", r.name()),
                Entry::Token(n, r, h) => writeln!(s, "token {n} {} sha256:{h}", r.name()),
            };
        }
        s
    }

    /// The entries, in the file's order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The user `name`'s role, if there is such a user.
    pub fn user_role(&self, name: &str) -> Option<Role> {
        self.entries.iter().find_map(|e| match e {
            Entry::User(n, r, _) if n == name => Some(*r),
            _ => None,
        })
    }

    /// The token `name`'s role, if there is such a token.
    pub fn token_role(&self, name: &str) -> Option<Role> {
        self.entries.iter().find_map(|e| match e {
            Entry::Token(n, r, _) if n == name => Some(*r),
            _ => None,
        })
    }

    /// How many users are admins.
    pub fn admins(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e, Entry::User(_, Role::Admin, _)))
            .count()
    }

    /// Remove the user (`token`: false) or token `name`; whether it was there.
    pub fn remove(&mut self, token: bool, name: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| match e {
            Entry::User(n, ..) => token || n != name,
            Entry::Token(n, ..) => !token || n != name,
        });
        self.entries.len() != before
    }

    /// Whether there is at least one user with a password.
    pub fn has_user(&self) -> bool {
        self.entries.iter().any(|e| matches!(e, Entry::User(..)))
    }

    /// Set (add or replace) an entry of the same kind and name.
    pub fn set(&mut self, entry: Entry) {
        let key = |e: &Entry| match e {
            Entry::User(n, ..) => (0, n.clone()),
            Entry::Token(n, ..) => (1, n.clone()),
        };
        let k = key(&entry);
        match self.entries.iter_mut().find(|e| key(e) == k) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
    }

    /// The role of `user` if `password` is theirs. An unknown user costs the same hash as
    /// a known one, so timing does not tell which names exist.
    pub fn verify_password(&self, user: &str, password: &str) -> Option<Role> {
        let found = self.entries.iter().find_map(|e| match e {
            Entry::User(n, r, h) if n == user => Some((*r, h.as_str())),
            _ => None,
        });
        let (role, hash) = found.unwrap_or((Role::Viewer, dummy_hash()));
        let parsed = PasswordHash::new(hash).ok()?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        (ok && found.is_some()).then_some(role)
    }

    /// The name and role of the token `token`.
    pub fn verify_token(&self, token: &str) -> Option<(String, Role)> {
        let digest = token_digest(token);
        self.entries.iter().find_map(|e| match e {
            Entry::Token(n, r, h) if constant_time_eq(h.as_bytes(), digest.as_bytes()) => {
                Some((n.clone(), *r))
            }
            _ => None,
        })
    }
}

/// The stored form of an API token: lowercase hex SHA-256.
pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// A valid argon2id hash of a password nobody has, for unknown users.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_hex(16)).unwrap_or_default())
}

/// Compare without stopping at the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `n` random bytes from the OS, in hex.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).expect("the OS random source");
    hex(&b)
}

/// The argon2id PHC string of `password` (argon2's default parameters: 19 MiB, t=2, p=1,
/// OWASP's recommendation).
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Read the file if it exists (an empty set if not).
fn load_or_empty(path: &Path) -> Result<Users, String> {
    match std::fs::metadata(path) {
        Ok(_) => Users::load(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Users::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Write the file atomically (a temporary file beside it, mode 0600, renamed over it).
pub fn save(path: &Path, users: &Users) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: io::Error| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let r = f
        .write_all(users.render().as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r.map_err(err)
}

/// `rvs console passwd`: the message to print.
pub fn passwd(a: &crate::PasswdArgs) -> Result<String, String> {
    if !valid_name(&a.user) {
        return Err(format!(
            "{:?}: a user name is 1 to 64 letters, digits, `.`, `_` or `-`",
            a.user
        ));
    }
    let mut users = load_or_empty(&a.users)?;
    let (password, shown) = if a.generate {
        let p = random_hex(12);
        (p.clone(), Some(p))
    } else {
        (read_password()?, None)
    };
    if password.chars().count() < 8 {
        return Err("the password is shorter than 8 characters; nothing written".into());
    }
    users.set(Entry::User(
        a.user.clone(),
        a.role,
        hash_password(&password)?,
    ));
    save(&a.users, &users)?;
    let mut msg = format!(
        "{}: user {} ({}) set\n",
        a.users.display(),
        a.user,
        a.role.name()
    );
    if let Some(p) = shown {
        let _ = writeln!(msg, "password: {p}");
    }
    Ok(msg)
}

/// `rvs console token`: the message to print (with the token, shown this once).
pub fn token(a: &crate::TokenArgs) -> Result<String, String> {
    if !valid_name(&a.name) {
        return Err(format!(
            "{:?}: a token name is 1 to 64 letters, digits, `.`, `_` or `-`",
            a.name
        ));
    }
    let mut users = load_or_empty(&a.users)?;
    let token = new_token();
    users.set(Entry::Token(
        a.name.clone(),
        a.role,
        hex(&Sha256::digest(token.as_bytes())),
    ));
    save(&a.users, &users)?;
    Ok(format!(
        "{}: token {} ({}) set; it is shown only now:\n{token}\n",
        a.users.display(),
        a.name,
        a.role.name()
    ))
}

/// A new API token: `rvs_` and 32 random bytes in hex.
pub fn new_token() -> String {
    format!("rvs_{}", random_hex(32))
}

/// The password: from the terminal without echo (asked twice), else stdin's first line.
fn read_password() -> Result<String, String> {
    if io::stdin().is_terminal() {
        let p = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if p != again {
            return Err("the passwords differ; nothing written".into());
        }
        Ok(p)
    } else {
        let mut line = String::new();
        io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading the password from stdin: {e}"))?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_round_trip_and_verify() {
        let mut u = Users::default();
        u.set(Entry::User(
            "alice".into(),
            Role::Operator,
            hash_password("correct horse").unwrap(),
        ));
        u.set(Entry::Token(
            "ci".into(),
            Role::Viewer,
            hex(&Sha256::digest(b"rvs_tok")),
        ));
        let back = Users::parse(&u.render()).unwrap();
        assert_eq!(
            back.verify_password("alice", "correct horse"),
            Some(Role::Operator)
        );
        assert_eq!(back.verify_password("alice", "wrong"), None);
        assert_eq!(back.verify_password("bob", "correct horse"), None);
        assert_eq!(
            back.verify_token("rvs_tok"),
            Some(("ci".into(), Role::Viewer))
        );
        assert_eq!(back.verify_token("rvs_other"), None);
        assert!(back.has_user());
    }

    #[test]
    fn bad_lines_are_refused_with_their_line() {
        assert_eq!(
            Users::parse("# c\nuser alice root $argon2id$x\n").unwrap_err(),
            (2, "role is viewer, operator or admin".into())
        );
        assert_eq!(Users::parse("token t viewer sha256:00\n").unwrap_err().0, 1);
        assert!(!Users::parse("").unwrap().has_user());
    }
}
