//! The HTTP server: routes, pages (askama templates), the live stream, the JSON API and
//! the serving loop (hyper HTTP/1.1, plain on loopback, rustls elsewhere).
//!
//! Routes (every one behind [`crate::auth::guard`]):
//!
//! | method | path | role | what |
//! |---|---|---|---|
//! | GET | `/login` | none | the login page |
//! | POST | `/login` | none | log in (form `user`, `password`); rate-limited per address |
//! | POST | `/logout` | viewer | end the session |
//! | GET | `/` | viewer | the live monitoring page |
//! | GET | `/audit` | viewer | the audit page |
//! | POST | `/action` | operator | form `service`, `server`, `action` (ready, drain, maint, weight, flush), `weight` |
//! | POST | `/service` | operator | form `service`, `action` (activate, deactivate) |
//! | POST | `/api/service` | operator | JSON `{"service","action"}` |
//! | GET | `/events` | viewer | Server-Sent Events: `snapshot` events (the JSON of `/api/snapshot`) |
//! | GET | `/api/snapshot` | viewer | everything the page shows |
//! | GET | `/api/services` | viewer | virtual services with their real servers |
//! | GET | `/api/stats` | viewer | one row per real server |
//! | GET | `/api/stats.csv` | viewer | the same as CSV |
//! | GET | `/api/health` | viewer | the health checks of each real server |
//! | GET | `/api/failover` | viewer | VRRP instances / pulse |
//! | GET | `/api/audit` | viewer | the newest audit records |
//! | GET | `/api/openapi.json` | viewer | the OpenAPI 3 document of these routes |
//! | GET | `/api/whoami` | viewer | user, role, and the session's CSRF token |
//! | POST | `/api/action` | operator | JSON `{"service","server","action","weight"}` |
//! | GET | `/config` | admin | the configuration file in a form, kept versions |
//! | POST | `/config` | admin | form `text`, `version`, `op` (`diff`: validate and show; `apply`) |
//! | POST | `/config/rollback` | admin | form `name` (a kept version), `version` |
//! | GET | `/peer`, `/api/peer` | viewer | the peer director's state ([`peer_panel`]) |
//! | POST | `/peer/copy`, `/api/peer/copy` | admin | copy the configuration to the peer |
//! | GET | `/config/panels` | admin | Piranha's panels for an lvs.cf ([`panel_forms`]) |
//! | GET, POST | `/config/panel` | admin | one panel's form; its change as diff or apply |
//! | GET, POST | `/config/form` | admin | a keepalived.conf or TOML object's form ([`object_forms`]) |
//! | POST | `/api/config/form` | admin | the same as JSON |
//! | GET, POST | `/users` | admin | users and API tokens ([`users_page`]) |
//! | GET, POST | `/api/users` | admin | the same as JSON |
//! | GET | `/api/config` | admin | `{path, text, version}` |
//! | POST | `/api/config/validate`, `/api/config/diff` | admin | `{text}`: diff and the parser's verdict |
//! | POST | `/api/config/apply` | admin | `{text, version}` |
//! | GET | `/api/config/versions` | admin | kept versions |
//! | POST | `/api/config/rollback` | admin | `{name, version}` |
//! | GET | `/static/console.js`, `/static/console.css` | none | the script and stylesheet |

use crate::audit::{Audit, Record};
use crate::auth::{self, Auth, ClientAddr, MAX_BODY, Principal};
use crate::config::{ConfigStore, Refusal};
use crate::daemon::{self, Action, Memory, Snapshot, Target};
use crate::users::{Role, Users};
use crate::{Control, ServeArgs};
use askama::Template;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore, watch};

mod object_forms;
mod panel_forms;
mod peer_panel;
mod users_page;

/// Connections served at once.
const MAX_CONNECTIONS: usize = 256;
/// Time for a request head to arrive.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Audit records on the audit page.
const AUDIT_SHOWN: usize = 200;

/// What the handlers share.
pub struct App {
    auth: Arc<Auth>,
    control: Arc<dyn Control>,
    memory: Memory,
    audit: Audit,
    live: watch::Receiver<Arc<Snapshot>>,
    refresh: Notify,
    interval: u64,
    /// One message for a session's next page (keyed by its CSRF token).
    flash: Mutex<HashMap<String, String>>,
    /// The configuration file, when `--config` names one.
    config: Option<ConfigStore>,
    /// The peer director's console, when `--peer` names one.
    peer: Option<crate::peer::Peer>,
    /// The users file (`rvs console passwd`'s), which the users page rewrites.
    users_file: std::path::PathBuf,
}

type Shared = State<Arc<App>>;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    snap: &'a Snapshot,
    can_act: bool,
    interval: u64,
    message: Option<String>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    records: Vec<Record>,
}

/// Keep `msg` for the next page of the session whose CSRF token is `key` (at most 10,000
/// messages waiting: sessions that never come back do not pile them up).
fn set_flash(app: &App, key: &str, msg: String) {
    let mut f = app.flash.lock().unwrap_or_else(|e| e.into_inner());
    if f.len() >= 10_000 {
        f.clear();
    }
    f.insert(key.to_string(), msg.chars().take(2000).collect());
}

/// The message kept for this session's next page, if any (shown once).
fn take_flash(app: &App, p: &Principal) -> Option<String> {
    app.flash
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&p.csrf)
}

fn page(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("template: {e}\n"),
        )
            .into_response(),
    }
}

/// The router (public for tests that drive it without a socket).
pub fn router(app: Arc<App>) -> Router {
    let auth = Arc::clone(&app.auth);
    Router::new()
        .route("/", get(index))
        .route("/audit", get(audit_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/action", post(action_form))
        .route("/service", post(service_form))
        .route("/api/service", post(api_service))
        .route("/events", get(events))
        .route("/api/snapshot", get(api_snapshot))
        .route("/api/services", get(api_services))
        .route("/api/stats", get(api_stats))
        .route("/api/stats.csv", get(api_csv))
        .route("/api/health", get(api_health))
        .route("/api/failover", get(api_failover))
        .route("/api/audit", get(api_audit))
        .route("/api/whoami", get(api_whoami))
        .route("/api/action", post(api_action))
        .route("/config", get(config_page).post(config_post))
        .route("/config/rollback", post(config_rollback))
        .route("/peer", get(peer_panel::peer_page))
        .route("/peer/copy", post(peer_panel::peer_copy_form))
        .route("/api/peer", get(peer_panel::api_peer))
        .route("/api/peer/copy", post(peer_panel::api_peer_copy))
        .route("/config/panels", get(panel_forms::panels_page))
        .route(
            "/config/form",
            get(object_forms::form_page).post(object_forms::form_post),
        )
        .route("/api/config/form", post(object_forms::api_form))
        .route(
            "/users",
            get(users_page::users_page).post(users_page::users_form),
        )
        .route(
            "/api/users",
            get(users_page::api_users).post(users_page::api_users_post),
        )
        .route(
            "/config/panel",
            get(panel_forms::panel_page).post(panel_forms::panel_post),
        )
        .route("/api/config", get(api_config))
        .route("/api/config/validate", post(api_config_validate))
        .route("/api/config/diff", post(api_config_validate))
        .route("/api/config/apply", post(api_config_apply))
        .route("/api/config/versions", get(api_config_versions))
        .route("/api/config/rollback", post(api_config_rollback))
        .route("/api/openapi.json", get(openapi))
        .route("/static/console.js", get(script))
        .route("/static/console.css", get(style))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(auth, auth::guard))
        .with_state(app)
}

async fn script() -> Response {
    static_file(
        "text/javascript; charset=utf-8",
        include_str!("../static/console.js"),
    )
}

async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../static/openapi.json"),
    )
        .into_response()
}

async fn style() -> Response {
    static_file(
        "text/css; charset=utf-8",
        include_str!("../static/console.css"),
    )
}

fn static_file(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

/// A fresh snapshot (read on the blocking pool).
async fn fresh(app: &Arc<App>) -> Snapshot {
    let a = Arc::clone(app);
    tokio::task::spawn_blocking(move || daemon::snapshot(&*a.control, &a.memory))
        .await
        .unwrap_or_else(|e| Snapshot {
            error: Some(e.to_string()),
            ..Snapshot::default()
        })
}

async fn index(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    let snap = fresh(&app).await;
    let message = take_flash(&app, &p);
    page(&IndexPage {
        user: &p.user,
        role: p.role.name(),
        csrf: &p.csrf,
        snap: &snap,
        can_act: p.role >= Role::Operator,
        interval: app.interval,
        message,
    })
}

async fn audit_page(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    let a = Arc::clone(&app);
    let records = tokio::task::spawn_blocking(move || a.audit.tail(AUDIT_SHOWN))
        .await
        .unwrap_or_default();
    page(&AuditPage {
        user: &p.user,
        role: p.role.name(),
        csrf: &p.csrf,
        records,
    })
}

async fn login_page() -> Response {
    page(&LoginPage { message: None })
}

/// The login form.
#[derive(serde::Deserialize)]
struct LoginForm {
    user: String,
    password: String,
}

fn record(
    app: &App,
    p: (&str, SocketAddr),
    action: &str,
    object: &str,
    before: &str,
    after: &str,
    result: &str,
) {
    let r = Record {
        time: crate::time::now(),
        user: p.0.chars().take(64).collect(),
        source: p.1.to_string(),
        action: action.into(),
        object: object.into(),
        before: before.into(),
        after: after.into(),
        result: result.into(),
    };
    app.audit.record(&r);
    // And the daemon's log (its `audit` control request, at most 4096 bytes: long rule
    // lists are cut there, the file keeps them whole), off the request's way.
    let mut json = serde_json::to_string(&r).unwrap_or_default();
    if json.len() > 4000 {
        let cut = |s: &str| s.chars().take(800).collect::<String>() + "...";
        let short = Record {
            before: cut(&r.before),
            after: cut(&r.after),
            object: cut(&r.object),
            ..r.clone()
        };
        json = serde_json::to_string(&short).unwrap_or_default();
    }
    let line = format!("audit {json}");
    let control = Arc::clone(&app.control);
    let send = move || {
        if let Err(e) = control.request(&line) {
            eprintln!("rvs console: the daemon's log did not take the audit record: {e}");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) => drop(h.spawn_blocking(send)),
        Err(_) => send(),
    }
}

async fn login(
    State(app): Shared,
    Extension(ClientAddr(source)): Extension<ClientAddr>,
    Form(f): Form<LoginForm>,
) -> Response {
    if !app.auth.login_allowed(source.ip()) {
        record(
            &app,
            (&f.user, source),
            "login",
            "",
            "",
            "",
            "refused: too many failed logins",
        );
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            page(&LoginPage {
                message: Some("Too many failed logins from this address; wait a minute.".into()),
            }),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return r;
    }
    let a = Arc::clone(&app);
    let (user, password) = (f.user.clone(), f.password);
    let role =
        tokio::task::spawn_blocking(move || a.auth.users().verify_password(&user, &password))
            .await
            .ok()
            .flatten();
    match role {
        Some(role) => {
            let id = app.auth.login(&f.user, role);
            record(&app, (&f.user, source), "login", "", "", "", "ok");
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&app.auth.cookie(&id)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        None => {
            app.auth.login_failed(source.ip());
            record(
                &app,
                (&f.user, source),
                "login",
                "",
                "",
                "",
                "refused: wrong user or password",
            );
            (
                StatusCode::UNAUTHORIZED,
                page(&LoginPage {
                    message: Some("Wrong user or password.".into()),
                }),
            )
                .into_response()
        }
    }
}

async fn logout(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    if let Some(id) = auth::session_id(&headers, app.auth.cookie_name()) {
        app.auth.logout(&id);
    }
    record(&app, (&p.user, p.source), "logout", "", "", "", "ok");
    let mut r = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&app.auth.cookie("")) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// An action's fields, from the form or the JSON API.
#[derive(serde::Deserialize)]
struct ActionForm {
    service: String,
    server: String,
    action: String,
    #[serde(default)]
    weight: Option<serde_json::Value>,
}

/// An operator's audited change: refused (and audited) unless `p` is an operator, refused
/// (audited) when `parse` refuses the request, else `run` on the blocking pool, the live
/// page told to refresh, and the outcome audited with its before and after. `name` and
/// `object` are what the audit log calls the action and its object (cut to what it keeps).
async fn audited<T: Send + 'static>(
    app: &Arc<App>,
    p: &Principal,
    name: &str,
    object: &str,
    parse: Result<T, String>,
    run: impl FnOnce(&App, T) -> Result<daemon::Outcome, (String, String)> + Send + 'static,
) -> Result<daemon::Outcome, (StatusCode, String)> {
    let name: String = name.chars().take(16).collect();
    let object: String = object.chars().take(200).collect();
    let refuse = |status: StatusCode, why: String| {
        record(
            app,
            (&p.user, p.source),
            &name,
            &object,
            "",
            "",
            &format!("refused: {why}"),
        );
        Err((status, why))
    };
    if p.require(Role::Operator).is_err() {
        return refuse(StatusCode::FORBIDDEN, "role".into())
            .map_err(|(s, _)| (s, "forbidden: this needs the operator role".to_string()));
    }
    let t = match parse {
        Ok(t) => t,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    let a = Arc::clone(app);
    let r = tokio::task::spawn_blocking(move || run(&a, t))
        .await
        .unwrap_or_else(|e| Err(("unknown".into(), e.to_string())));
    app.refresh.notify_one();
    match r {
        Ok(o) => {
            record(
                app,
                (&p.user, p.source),
                &name,
                &object,
                &o.before,
                &o.after,
                "ok",
            );
            Ok(o)
        }
        Err((before, why)) => {
            record(
                app,
                (&p.user, p.source),
                &name,
                &object,
                &before,
                &before,
                &format!("failed: {why}"),
            );
            Err((StatusCode::CONFLICT, why))
        }
    }
}

/// An audited change's answer: for a form, the result kept for the next page and a
/// redirect to `/` (a role refusal answered 403); for the API, JSON.
fn answer(
    app: &App,
    p: &Principal,
    form: bool,
    what: &str,
    r: Result<daemon::Outcome, (StatusCode, String)>,
) -> Response {
    match (form, r) {
        (_, Err((StatusCode::FORBIDDEN, e))) if form => {
            (StatusCode::FORBIDDEN, format!("{e}\n")).into_response()
        }
        (true, r) => {
            let msg = match r {
                Ok(o) => format!("Done: {what} (now: {})", o.after),
                Err((_, e)) => format!("Failed: {what}: {e}"),
            };
            set_flash(app, &p.csrf, msg);
            Redirect::to("/").into_response()
        }
        (false, Ok(o)) => {
            Json(serde_json::json!({"ok": true, "before": o.before, "after": o.after}))
                .into_response()
        }
        (false, Err((status, e))) => {
            (status, Json(serde_json::json!({"ok": false, "error": e}))).into_response()
        }
    }
}

/// A real-server action (ready, drain, maint, weight, flush) for `p`, audited.
async fn perform(app: &Arc<App>, p: &Principal, f: ActionForm, form: bool) -> Response {
    let weight = f.weight.as_ref().map(|w| match w {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let parsed = Target::parse(&f.service, &f.server)
        .and_then(|t| Action::parse(&f.action, weight.as_deref()).map(|a| (t, a)));
    let (name, object) = match &parsed {
        Ok((t, Action::Weight(n))) => (format!("weight {n}"), t.object()),
        Ok((t, a)) => (a.name().to_string(), t.object()),
        Err(_) => (f.action.clone(), format!("{} -> {}", f.service, f.server)),
    };
    let r = audited(app, p, &name, &object, parsed, |app, (t, action)| {
        daemon::act(&*app.control, &app.memory, &t, action)
    })
    .await;
    let what = format!("{} {} -> {}", f.action, f.service, f.server);
    answer(app, p, form, &what, r)
}

async fn action_form(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Form(f): Form<ActionForm>,
) -> Response {
    perform(&app, &p, f, true).await
}

async fn api_action(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Json(f): Json<ActionForm>,
) -> Response {
    perform(&app, &p, f, false).await
}

/// A service's fields: `service`, `action` (`activate` or `deactivate`).
#[derive(serde::Deserialize)]
struct ServiceForm {
    service: String,
    action: String,
}

/// (De)activate a service for `p` (operator), audited.
async fn perform_service(app: &Arc<App>, p: &Principal, f: ServiceForm, form: bool) -> Response {
    let parsed = daemon::ServiceTarget::parse(&f.service).and_then(|t| match f.action.as_str() {
        "activate" => Ok((t, true)),
        "deactivate" => Ok((t, false)),
        other => Err(format!("unknown action {other:?}")),
    });
    let object = parsed
        .as_ref()
        .map_or(f.service.clone(), |(t, _)| t.id.clone());
    let r = audited(app, p, &f.action, &object, parsed, |app, (t, activate)| {
        daemon::service_act(&*app.control, &app.memory, &t, activate)
    })
    .await;
    let what = format!("{} {}", f.action, f.service);
    answer(app, p, form, &what, r)
}

async fn service_form(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Form(f): Form<ServiceForm>,
) -> Response {
    perform_service(&app, &p, f, true).await
}

async fn api_service(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Json(f): Json<ServiceForm>,
) -> Response {
    perform_service(&app, &p, f, false).await
}

async fn api_snapshot(State(app): Shared) -> Response {
    Json(fresh(&app).await).into_response()
}

async fn api_services(State(app): Shared) -> Response {
    Json(fresh(&app).await.services).into_response()
}

async fn api_stats(State(app): Shared) -> Response {
    let s = fresh(&app).await;
    Json(serde_json::json!({"time": s.time, "rows": s.rows()})).into_response()
}

async fn api_csv(State(app): Shared) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"rvs-stats.csv\"",
            ),
        ],
        fresh(&app).await.csv(),
    )
        .into_response()
}

async fn api_health(State(app): Shared) -> Response {
    let s = fresh(&app).await;
    let rows: Vec<_> = s
        .rows()
        .into_iter()
        .filter_map(|r| {
            r.server.health.as_ref().map(|h| {
                serde_json::json!({"service": r.service, "server": r.server.address, "health": h})
            })
        })
        .collect();
    Json(rows).into_response()
}

async fn api_failover(State(app): Shared) -> Response {
    Json(fresh(&app).await.failover).into_response()
}

#[derive(Template)]
#[template(path = "config.html")]
struct ConfigPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    path: String,
    text: String,
    version: String,
    diff: String,
    errors: Option<String>,
    effective: Option<String>,
    message: Option<String>,
    versions: Vec<String>,
}

/// The store, or 404 when the console was started without `--config`; 403 unless admin.
#[allow(clippy::result_large_err)]
fn store<'a>(app: &'a App, p: &Principal) -> Result<&'a ConfigStore, Response> {
    p.require(Role::Admin)?;
    app.config.as_ref().ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            "no configuration file: start the console with --config FILE\n",
        )
            .into_response()
    })
}

/// For an admin, with `--config`: run `f` with the app and the configuration store on the
/// blocking pool; else the refusal [`store`] answers.
async fn with_store(
    app: &Arc<App>,
    p: &Principal,
    f: impl FnOnce(&App, &ConfigStore) -> Response + Send + 'static,
) -> Response {
    if let Err(r) = store(app, p) {
        return r;
    }
    blocking(app, move |app| {
        f(app, app.config.as_ref().expect("checked"))
    })
    .await
}

/// Run `f` with the app on the blocking pool.
async fn blocking<T: Send + 'static>(
    app: &Arc<App>,
    f: impl FnOnce(&App) -> T + Send + 'static,
) -> T {
    let a = Arc::clone(app);
    tokio::task::spawn_blocking(move || f(&a))
        .await
        .expect("a blocking task")
}

/// The config page for `text` at `version`, with what a validation found.
#[allow(clippy::too_many_arguments)]
fn config_view(
    app: &App,
    p: &Principal,
    text: String,
    version: String,
    diff: String,
    errors: Option<String>,
    effective: Option<String>,
    message: Option<String>,
) -> Response {
    let store = app.config.as_ref().expect("checked");
    page(&ConfigPage {
        user: &p.user,
        role: p.role.name(),
        csrf: &p.csrf,
        path: store.path().display().to_string(),
        text,
        version,
        diff,
        errors,
        effective,
        message,
        versions: store.versions(),
    })
}

async fn config_page(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    let message = take_flash(&app, &p);
    let pp = p.clone();
    with_store(&app, &p.clone(), move |app, store| match store.read() {
        Ok((text, version)) => {
            config_view(app, &pp, text, version, String::new(), None, None, message)
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    })
    .await
}

/// The config form.
#[derive(serde::Deserialize)]
struct ConfigForm {
    text: String,
    version: String,
    #[serde(default)]
    op: String,
}

/// An API apply or rollback's answer: audited, the live page told to refresh, and the
/// result (or the refusal with its status) as JSON.
fn applied_json(
    app: &App,
    p: &Principal,
    action: &str,
    r: Result<crate::config::Applied, Refusal>,
    base: &str,
) -> Response {
    audit_apply(app, p, action, &r, base);
    app.refresh.notify_one();
    match r {
        Ok(a) => Json(serde_json::json!({"ok": true, "applied": a})).into_response(),
        Err(e) => (
            refusal_status(&e),
            Json(serde_json::json!({"ok": false, "error": e.message()})),
        )
            .into_response(),
    }
}

fn audit_apply(
    app: &App,
    p: &Principal,
    action: &str,
    r: &Result<crate::config::Applied, Refusal>,
    base: &str,
) {
    let object = app
        .config
        .as_ref()
        .map_or(String::new(), |s| s.path().display().to_string());
    match r {
        Ok(a) => record(
            app,
            (&p.user, p.source),
            action,
            &object,
            &format!("version {} (kept as {})", a.before, a.saved),
            &format!("version {}", a.after),
            &format!("ok: {}", a.reload),
        ),
        Err(e) => {
            let first = e.message().lines().next().unwrap_or_default().to_string();
            let kind = match e {
                Refusal::Conflict(_) => "refused: conflict",
                Refusal::Invalid(_) => "refused: invalid",
                Refusal::Failed(_) => "failed",
            };
            record(
                app,
                (&p.user, p.source),
                action,
                &object,
                &format!("version {base}"),
                &format!("version {base}"),
                &format!("{kind}: {first}"),
            );
        }
    }
}

fn refusal_status(e: &Refusal) -> StatusCode {
    match e {
        Refusal::Conflict(_) => StatusCode::CONFLICT,
        Refusal::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::Failed(_) => StatusCode::BAD_GATEWAY,
    }
}

async fn config_post(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Form(f): Form<ConfigForm>,
) -> Response {
    let pp = p.clone();
    with_store(&app, &p.clone(), move |app, store| {
        let text = f.text.replace("\r\n", "\n");
        if f.op == "apply" {
            let r = store.apply(&*app.control, &text, &f.version);
            audit_apply(app, &pp, "config apply", &r, &f.version);
            match r {
                Ok(a) => {
                    set_flash(
                        app,
                        &pp.csrf,
                        format!(
                            "Applied (previous version kept as {}); the daemon: {}",
                            a.saved, a.reload
                        ),
                    );
                    app.refresh.notify_one();
                    Redirect::to("/config").into_response()
                }
                Err(e) => {
                    let status = refusal_status(&e);
                    let mut r = config_view(
                        app,
                        &pp,
                        text,
                        f.version,
                        String::new(),
                        Some(e.message().to_string()),
                        None,
                        None,
                    );
                    *r.status_mut() = status;
                    r
                }
            }
        } else {
            let old = store.read().map(|(t, _)| t).unwrap_or_default();
            let name = store
                .path()
                .file_name()
                .map_or("config".into(), |n| n.to_string_lossy().into_owned());
            let d = crate::config::diff(&name, &old, &text);
            match store.validate(&*app.control, &text) {
                Ok(eff) => config_view(app, &pp, text, f.version, d, None, Some(eff), None),
                Err(e) => {
                    let mut r = config_view(app, &pp, text, f.version, d, Some(e), None, None);
                    *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                    r
                }
            }
        }
    })
    .await
}

/// A rollback: the kept version `name`, applied over `version`.
#[derive(serde::Deserialize)]
struct RollbackForm {
    name: String,
    version: String,
}

async fn config_rollback(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Form(f): Form<RollbackForm>,
) -> Response {
    let pp = p.clone();
    with_store(&app, &p.clone(), move |app, store| {
        let r = store
            .version_text(&f.name)
            .map_err(Refusal::Failed)
            .and_then(|text| store.apply(&*app.control, &text, &f.version));
        audit_apply(
            app,
            &pp,
            &format!(
                "config rollback to {}",
                f.name.chars().take(80).collect::<String>()
            ),
            &r,
            &f.version,
        );
        let msg = match &r {
            Ok(a) => format!(
                "Rolled back to {} (the replaced version kept as {}); the daemon: {}",
                f.name, a.saved, a.reload
            ),
            Err(e) => format!("Rollback refused: {}", e.message()),
        };
        set_flash(app, &pp.csrf, msg);
        app.refresh.notify_one();
        Redirect::to("/config").into_response()
    })
    .await
}

async fn api_config(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    with_store(&app, &p.clone(), move |_, store| match store.read() {
        Ok((text, version)) => {
            Json(serde_json::json!({"path": store.path(), "text": text, "version": version}))
                .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    })
    .await
}

/// `{"text": ...}` (and `"version"` for apply).
#[derive(serde::Deserialize)]
struct ConfigJson {
    text: String,
    #[serde(default)]
    version: String,
}

async fn api_config_validate(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Json(f): Json<ConfigJson>,
) -> Response {
    with_store(&app, &p.clone(), move |app, store| {
        let old = store.read().map(|(t, _)| t).unwrap_or_default();
        let name = store
            .path()
            .file_name()
            .map_or("config".into(), |n| n.to_string_lossy().into_owned());
        let d = crate::config::diff(&name, &old, &f.text);
        match store.validate(&*app.control, &f.text) {
            Ok(eff) => {
                Json(serde_json::json!({"ok": true, "diff": d, "effective": eff})).into_response()
            }
            Err(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({"ok": false, "diff": d, "errors": e})),
            )
                .into_response(),
        }
    })
    .await
}

async fn api_config_apply(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Json(f): Json<ConfigJson>,
) -> Response {
    with_store(&app, &p.clone(), move |app, store| {
        let r = store.apply(&*app.control, &f.text, &f.version);
        applied_json(app, &p, "config apply", r, &f.version)
    })
    .await
}

async fn api_config_versions(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    with_store(&app, &p, |_, store| Json(store.versions()).into_response()).await
}

async fn api_config_rollback(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Json(f): Json<RollbackForm>,
) -> Response {
    with_store(&app, &p.clone(), move |app, store| {
        let r = store
            .version_text(&f.name)
            .map_err(Refusal::Failed)
            .and_then(|text| store.apply(&*app.control, &text, &f.version));
        let action = format!(
            "config rollback to {}",
            f.name.chars().take(80).collect::<String>()
        );
        applied_json(app, &p, &action, r, &f.version)
    })
    .await
}

/// `?n=` for the audit API.
#[derive(serde::Deserialize)]
struct Tail {
    n: Option<usize>,
}

async fn api_audit(State(app): Shared, Query(t): Query<Tail>) -> Response {
    let n = t.n.unwrap_or(AUDIT_SHOWN).min(10_000);
    let a = Arc::clone(&app);
    let records = tokio::task::spawn_blocking(move || a.audit.tail(n))
        .await
        .unwrap_or_default();
    Json(records).into_response()
}

async fn api_whoami(Extension(p): Extension<Principal>) -> Response {
    Json(serde_json::json!({"user": p.user, "role": p.role, "csrf": p.csrf})).into_response()
}

async fn events(State(app): Shared, headers: HeaderMap) -> Response {
    let session = auth::session_id(&headers, app.auth.cookie_name());
    let rx = app.live.clone();
    // The first event is read now; then each one the poller publishes.
    let first = Some(Arc::new(fresh(&app).await));
    let state = (rx, first, app, session);
    let stream = futures_util::stream::unfold(state, |(mut rx, first, app, session)| async move {
        let snap = match first {
            Some(s) => s,
            None => {
                rx.changed().await.ok()?;
                Arc::clone(&rx.borrow_and_update())
            }
        };
        if let Some(id) = &session
            && !app.auth.still_live(id)
        {
            return None;
        }
        let data = serde_json::to_string(&*snap).unwrap_or_default();
        let ev: Result<Event, Infallible> = Ok(Event::default().event("snapshot").data(data));
        Some((ev, (rx, None, app, session)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Read the snapshot every `interval` (or at once after an action) for the live stream.
async fn poll(app: Arc<App>, tx: watch::Sender<Arc<Snapshot>>) {
    loop {
        if tx.receiver_count() > 1 {
            let s = fresh(&app).await;
            tx.send_replace(Arc::new(s));
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(app.interval)) => {}
            () = app.refresh.notified() => {}
        }
    }
}

/// What [`prepare`] checked and opened.
struct Prepared {
    listener: std::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    auth: Arc<Auth>,
    audit: Audit,
    /// What the console took out of the table, read back from the state file.
    memory: Memory,
    /// The peer director's console.
    peer: Option<crate::peer::Peer>,
}

fn prepare(args: &ServeArgs, control: &dyn Control) -> Result<Prepared, String> {
    let users = Users::load(&args.users)?;
    if !users.has_user() {
        return Err(format!(
            "{}: no user; set one with `rvs console passwd USER --role admin` (there is no default password)",
            args.users.display()
        ));
    }
    let tls = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            c, k,
        )?)),
        _ if !args.listen.ip().is_loopback() => {
            return Err(format!(
                "{}: an address other than loopback requires TLS: give --cert and --key",
                args.listen
            ));
        }
        _ => None,
    };
    let audit = Audit::open(&args.audit).map_err(|e| format!("audit log: {e}"))?;
    let listener =
        std::net::TcpListener::bind(args.listen).map_err(|e| format!("{}: {e}", args.listen))?;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let auth = Arc::new(Auth::new(
        users,
        Duration::from_secs(args.idle_timeout),
        Duration::from_secs(args.session_lifetime),
        tls.is_some(),
    ));
    let peer = match (&args.peer, &args.peer_token_file) {
        (Some(url), Some(tok)) => Some(crate::peer::Peer::new(url, tok, args.peer_ca.as_deref())?),
        _ => None,
    };
    let (memory, said) = Memory::open(args.state_file(), control);
    eprintln!("rvs console: {said}");
    Ok(Prepared {
        listener,
        tls,
        auth,
        audit,
        memory,
        peer,
    })
}

async fn serve(p: Prepared, args: ServeArgs, control: Arc<dyn Control>) {
    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    let memory = p.memory;
    let app = Arc::new(App {
        auth: p.auth,
        control,
        memory,
        audit: p.audit,
        live: rx,
        refresh: Notify::new(),
        interval: args.interval,
        flash: Mutex::default(),
        config: args
            .config
            .clone()
            .map(|c| ConfigStore::new(c, args.config_versions.clone())),
        peer: p.peer,
        users_file: args.users.clone(),
    });
    tokio::spawn(poll(Arc::clone(&app), tx));
    let router = router(app);
    let listener = match tokio::net::TcpListener::from_std(p.listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rvs console: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                eprintln!("rvs console: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let r = router.clone();
        let service =
            tower::service_fn(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                let mut r = r.clone();
                async move { tower::Service::call(&mut r, req.map(axum::body::Body::new)).await }
            });
        let service = TowerToHyperService::new(service);
        let tls = p.tls.clone();
        tokio::spawn(async move {
            let builder = {
                let mut b = hyper::server::conn::http1::Builder::new();
                b.timer(TokioTimer::new()).header_read_timeout(HEAD_TIMEOUT);
                b
            };
            match tls {
                Some(acceptor) => {
                    if let Ok(Ok(s)) =
                        tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let _ = builder.serve_connection(TokioIo::new(s), service).await;
                    }
                }
                None => {
                    let _ = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                }
            }
            drop(slot);
        });
    }
}

/// Check the users file and TLS, bind, and serve from a thread of its own: the bound
/// address (tests listen on port 0).
pub fn start(args: &ServeArgs, control: Arc<dyn Control>) -> Result<SocketAddr, String> {
    let p = prepare(args, &*control)?;
    let addr = p.listener.local_addr().map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let args = args.clone();
    std::thread::Builder::new()
        .name("rvs-console".into())
        .spawn(move || rt.block_on(serve(p, args, control)))
        .map_err(|e| e.to_string())?;
    Ok(addr)
}

/// `rvs console`: serve until SIGINT or SIGTERM.
pub fn run(args: &ServeArgs, control: Arc<dyn Control>) -> Result<(), String> {
    let p = prepare(args, &*control)?;
    let scheme = if p.tls.is_some() { "https" } else { "http" };
    eprintln!(
        "rvs console: serving {scheme}://{} (users {}, audit log {})",
        args.listen,
        args.users.display(),
        args.audit.display()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| e.to_string())?;
        tokio::select! {
            () = serve(p, args.clone(), control) => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok::<(), String>(())
    })
}
