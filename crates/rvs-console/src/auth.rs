//! Who is asking, and whether they may: sessions, API tokens, CSRF, Origin, the login rate
//! limit, the body limit and the security headers, as one middleware ([`guard`]) in front
//! of every route.
//!
//! Order for each request:
//! 1. a declared body over [`MAX_BODY`] is answered 413 before anything is read (bodies
//!    without a length are cut at the same size by the extractors);
//! 2. the [`STATIC_FILES`] (GET/HEAD) and `/login` are the only routes served without a session;
//! 3. otherwise an `Authorization: Bearer` API token or the session cookie is required:
//!    without one, a page GET is sent to `/login` (303) and everything else gets 401;
//! 4. a request that is not GET/HEAD must come from this console's own origin (an
//!    `Origin`, or failing that `Referer`, naming another origin is refused 403; one with
//!    neither is let through to the token check, as non-browser clients send neither) and,
//!    when a session cookie authenticates it, carry the session's CSRF token (the
//!    `X-CSRF-Token` header, or the form field `csrf`), else 403. A bearer token is not
//!    sent by browsers on their own, so it needs no CSRF token;
//! 5. every answer gets the security headers ([`SECURITY_HEADERS`], HSTS under TLS) and
//!    `Cache-Control: no-store` (static files: a short public cache).
//!
//! Role checks are the handlers' ([`Principal::require`]).

use crate::users::{Role, Users, constant_time_eq, random_hex};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest request body read (forms, JSON, and a configuration file's text).
pub const MAX_BODY: usize = 1024 * 1024;
/// Time allowed for a request body to arrive.
pub const BODY_TIME: Duration = Duration::from_secs(10);
/// Failed logins allowed from one address per [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES: u32 = 5;
/// The window of [`LOGIN_FAILURES`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// The Content-Security-Policy: nothing but this console's own scripts, styles and
/// connections; no inline script or style, no framing, forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers on every answer.
pub const SECURITY_HEADERS: [(&str, &str); 7] = [
    ("content-security-policy", CSP),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=()",
    ),
];

/// The only routes served to anyone (exact paths: nothing else under `/static/`).
pub const STATIC_FILES: [&str; 2] = ["/static/console.js", "/static/console.css"];

/// Who is asking.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user, or `token:NAME`.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// The session's CSRF token (empty for an API token).
    pub csrf: String,
    /// The client's address.
    pub source: SocketAddr,
}

impl Principal {
    /// 403 unless the role is at least `role`.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, role: Role) -> Result<(), Response> {
        if self.role >= role {
            Ok(())
        } else {
            Err((
                StatusCode::FORBIDDEN,
                format!("forbidden: this needs the {} role\n", role.name()),
            )
                .into_response())
        }
    }
}

/// The client's address, put on each request by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

struct Session {
    user: String,
    role: Role,
    csrf: String,
    created: Instant,
    seen: Instant,
}

/// The authentication state shared by all requests.
pub struct Auth {
    /// The users file, read at start and replaced when the users page writes it.
    users: std::sync::RwLock<Users>,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
    idle: Duration,
    lifetime: Duration,
    /// Served over TLS: the cookie is `__Host-` and Secure, and HSTS is sent.
    pub tls: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Auth {
    /// Sessions ending after `idle` without use or `lifetime` after login.
    pub fn new(users: Users, idle: Duration, lifetime: Duration, tls: bool) -> Auth {
        Auth {
            users: std::sync::RwLock::new(users),
            sessions: Mutex::default(),
            failures: Mutex::default(),
            idle,
            lifetime,
            tls,
        }
    }

    /// The session cookie's name: `__Host-rvs_session` under TLS; browsers refuse a
    /// `__Host-` cookie without Secure, and Secure needs https, so plain HTTP on loopback
    /// uses `rvs_session`.
    pub fn cookie_name(&self) -> &'static str {
        if self.tls {
            "__Host-rvs_session"
        } else {
            "rvs_session"
        }
    }

    /// The `Set-Cookie` value for session `id` (empty and expired to clear it).
    pub fn cookie(&self, id: &str) -> String {
        let mut c = format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie_name()
        );
        if id.is_empty() {
            c.push_str("; Max-Age=0");
        } else {
            c.push_str(&format!("; Max-Age={}", self.lifetime.as_secs()));
        }
        if self.tls {
            c.push_str("; Secure");
        }
        c
    }

    /// The users and tokens now (a copy: checking a password takes a while).
    pub fn users(&self) -> Users {
        self.users.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Use `users` from now on (the users page wrote them to the file).
    pub fn replace_users(&self, users: Users) {
        *self.users.write().unwrap_or_else(|e| e.into_inner()) = users;
    }

    /// End every session of `user` (their role changed, or they were deleted).
    pub fn end_sessions_of(&self, user: &str) {
        lock(&self.sessions).retain(|_, s| s.user != user);
    }

    /// Whether `ip` may try to log in now (fewer than [`LOGIN_FAILURES`] failures in the
    /// window).
    pub fn login_allowed(&self, ip: IpAddr) -> bool {
        let mut f = lock(&self.failures);
        let now = Instant::now();
        f.retain(|_, (start, _)| now.duration_since(*start) < LOGIN_WINDOW);
        f.get(&ip).is_none_or(|(_, n)| *n < LOGIN_FAILURES)
    }

    /// Count a failed login from `ip`.
    pub fn login_failed(&self, ip: IpAddr) {
        let mut f = lock(&self.failures);
        let e = f.entry(ip).or_insert((Instant::now(), 0));
        e.1 += 1;
    }

    /// Start a session: its id (for the cookie).
    pub fn login(&self, user: &str, role: Role) -> String {
        let id = random_hex(32);
        let now = Instant::now();
        let mut s = lock(&self.sessions);
        s.retain(|_, v| self.live(v, now));
        s.insert(
            id.clone(),
            Session {
                user: user.into(),
                role,
                csrf: random_hex(32),
                created: now,
                seen: now,
            },
        );
        id
    }

    /// End the session `id`.
    pub fn logout(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    fn live(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.seen) < self.idle && now.duration_since(s.created) < self.lifetime
    }

    /// The session `id` if it is live (its idle time restarts).
    fn session(&self, id: &str, source: SocketAddr) -> Option<Principal> {
        let now = Instant::now();
        let mut map = lock(&self.sessions);
        let s = map.get_mut(id)?;
        if !self.live(s, now) {
            map.remove(id);
            return None;
        }
        s.seen = now;
        Some(Principal {
            user: s.user.clone(),
            role: s.role,
            csrf: s.csrf.clone(),
            source,
        })
    }

    /// Whether the session `id` is still live, without touching it (the live stream).
    pub fn still_live(&self, id: &str) -> bool {
        lock(&self.sessions)
            .get(id)
            .is_some_and(|s| self.live(s, Instant::now()))
    }
}

/// The session id in the request's cookies.
pub fn session_id(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Whether the request's `Origin` (else `Referer`) is this console's own origin, judged
/// from its `Host` and whether it is served over TLS. `None`: neither header.
pub fn same_origin(headers: &HeaderMap, tls: bool) -> Option<bool> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let own = host.map(|h| format!("{}://{h}", if tls { "https" } else { "http" }));
    if let Some(o) = headers.get(header::ORIGIN) {
        return Some(own.is_some_and(|own| o.to_str().is_ok_and(|o| o == own)));
    }
    if let Some(r) = headers.get(header::REFERER) {
        return Some(own.is_some_and(|own| {
            r.to_str()
                .is_ok_and(|r| r == own || r.starts_with(&format!("{own}/")))
        }));
    }
    None
}

fn refuse(status: StatusCode, why: &str) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// Whether a path is an API or stream route (401, not a redirect to the login page).
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/api" || path == "/events"
}

/// The middleware: see the module's documentation.
pub async fn guard(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    let static_file = STATIC_FILES.contains(&req.uri().path());
    let mut resp = check(&auth, req, next).await;
    let h = resp.headers_mut();
    for (k, v) in SECURITY_HEADERS {
        h.insert(k, HeaderValue::from_static(v));
    }
    if auth.tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    if !static_file {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

async fn check(auth: &Auth, mut req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    }
    let source = req
        .extensions()
        .get::<ClientAddr>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |c| c.0);
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let safe = method == Method::GET || method == Method::HEAD;
    if STATIC_FILES.contains(&path.as_str()) {
        return if safe {
            next.run(req).await
        } else {
            refuse(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        };
    }
    if !safe && same_origin(req.headers(), auth.tls) == Some(false) {
        return refuse(StatusCode::FORBIDDEN, "forbidden: cross-origin request");
    }
    // A body is read whole here (bounded in size and time), so no request can hold a
    // connection open by trickling one.
    let body = if safe {
        None
    } else {
        let (parts, body) = req.into_parts();
        match tokio::time::timeout(BODY_TIME, axum::body::to_bytes(body, MAX_BODY)).await {
            Ok(Ok(b)) => {
                req = Request::from_parts(parts, Body::from(b.clone()));
                Some(b)
            }
            Ok(Err(_)) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
            Err(_) => return refuse(StatusCode::REQUEST_TIMEOUT, "request body too slow"),
        }
    };
    if path == "/login" {
        return next.run(req).await;
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let principal = match bearer {
        Some(token) => match auth
            .users
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verify_token(token)
        {
            Some((name, role)) => Principal {
                user: format!("token:{name}"),
                role,
                csrf: String::new(),
                source,
            },
            None => return refuse(StatusCode::UNAUTHORIZED, "unauthorized: unknown token"),
        },
        None => {
            let p = session_id(req.headers(), auth.cookie_name())
                .and_then(|id| auth.session(&id, source));
            match p {
                Some(p) => {
                    if let Some(bytes) = &body
                        && !csrf_ok(req.headers(), bytes, &p.csrf)
                    {
                        return refuse(
                            StatusCode::FORBIDDEN,
                            "forbidden: missing or wrong CSRF token",
                        );
                    }
                    p
                }
                None if safe && !is_api(&path) => {
                    return Redirect::to("/login").into_response();
                }
                None => return refuse(StatusCode::UNAUTHORIZED, "unauthorized: log in first"),
            }
        }
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The CSRF token from the header or the urlencoded form field `csrf` matches.
fn csrf_ok(headers: &HeaderMap, body: &[u8], want: &str) -> bool {
    let eq = |got: &str| !want.is_empty() && constant_time_eq(got.as_bytes(), want.as_bytes());
    if let Some(h) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return eq(h);
    }
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    form && serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()
        .and_then(|f| f.into_iter().find(|(k, _)| k == "csrf"))
        .is_some_and(|(_, v)| eq(&v))
}
