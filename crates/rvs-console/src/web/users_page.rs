//! User management (admin): `GET /users` lists the users and API tokens with their roles;
//! `POST /users` (form fields `op`, `name`, `role`, `password`, `csrf`) and
//! `POST /api/users` (JSON `{op, name, role, password}`) change them, with `op`:
//! - `add`: a new user with a password (8 characters or more) and a role;
//! - `password`: a user's new password;
//! - `role`: a user's new role (the last admin stays admin);
//! - `delete`: a user (not the last admin);
//! - `token`: a new API token with a role, its secret shown once (stored as SHA-256);
//! - `revoke`: an API token.
//!
//! Each change reads the users file (what `rvs console passwd` and `rvs console token`
//! write: they may have changed it meanwhile), changes it, writes it atomically (a
//! temporary file renamed over it, mode 0600; [`crate::users::save`]), and makes it the
//! console's; a user whose role changed, whose password changed or who was deleted has
//! their sessions ended. Every change and refusal is audited (never a password or a
//! token). The auth middleware has already required a same-origin request and the CSRF
//! token of a session (or an API token); viewers and operators are refused (403); GET
//! changes nothing.

use super::*;
use crate::users::{self, Entry};

/// One change at a time (read, change, write the file).
static WRITING: Mutex<()> = Mutex::new(());

/// A change asked for.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(super) struct UserOp {
    #[serde(default)]
    op: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

/// What a change did: the message, and a new token's secret.
struct Done {
    message: String,
    token: Option<String>,
    /// The role before and after, for the audit log ("" for none).
    before: &'static str,
    after: &'static str,
}

fn refused(status: StatusCode, why: impl Into<String>) -> (StatusCode, String) {
    (status, why.into())
}

/// Make the change: see the module's documentation.
fn change(app: &App, o: &UserOp) -> Result<Done, (StatusCode, String)> {
    let _one = WRITING.lock().unwrap_or_else(|e| e.into_inner());
    let mut u = users::Users::load(&app.users_file)
        .map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let name = o.name.trim();
    if !users::valid_name(name) {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            format!("{name:?}: a name is 1 to 64 letters, digits, `.`, `_` or `-`"),
        ));
    }
    let role = || {
        Role::parse(o.role.trim()).ok_or_else(|| {
            refused(
                StatusCode::BAD_REQUEST,
                format!("{:?}: a role is viewer, operator or admin", o.role),
            )
        })
    };
    let password = || {
        if o.password.chars().count() < 8 {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                "the password is shorter than 8 characters",
            ));
        }
        users::hash_password(&o.password).map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, e))
    };
    let no_user = || refused(StatusCode::NOT_FOUND, format!("no user {name:?}"));
    let last_admin = |r: Option<Role>| r == Some(Role::Admin) && u.admins() <= 1;
    let mut token = None;
    let mut end_sessions = false;
    let (mut before, mut after) = ("", "");
    let message = match o.op.as_str() {
        "add" => {
            let r = role()?;
            if u.user_role(name).is_some() {
                return Err(refused(
                    StatusCode::CONFLICT,
                    format!("user {name:?} is there already: change its role or password"),
                ));
            }
            u.set(Entry::User(name.into(), r, password()?));
            after = r.name();
            format!("user {name} ({}) added", r.name())
        }
        "password" => {
            let r = u.user_role(name).ok_or_else(no_user)?;
            u.set(Entry::User(name.into(), r, password()?));
            end_sessions = true;
            (before, after) = (r.name(), r.name());
            format!("user {name}'s password changed")
        }
        "role" => {
            let old = u.user_role(name).ok_or_else(no_user)?;
            let r = role()?;
            if r != Role::Admin && last_admin(Some(old)) {
                return Err(refused(
                    StatusCode::CONFLICT,
                    format!("{name} is the last admin: make another admin first"),
                ));
            }
            let hash = u
                .entries()
                .iter()
                .find_map(|e| match e {
                    Entry::User(n, _, h) if n == name => Some(h.clone()),
                    _ => None,
                })
                .ok_or_else(no_user)?;
            u.set(Entry::User(name.into(), r, hash));
            end_sessions = true;
            (before, after) = (old.name(), r.name());
            format!("user {name}: {} → {}", old.name(), r.name())
        }
        "delete" => {
            let old = u.user_role(name).ok_or_else(no_user)?;
            if last_admin(Some(old)) {
                return Err(refused(
                    StatusCode::CONFLICT,
                    format!("{name} is the last admin: it is not deleted"),
                ));
            }
            u.remove(false, name);
            end_sessions = true;
            before = old.name();
            format!("user {name} ({}) deleted", old.name())
        }
        "token" => {
            let r = role()?;
            if u.token_role(name).is_some() {
                return Err(refused(
                    StatusCode::CONFLICT,
                    format!("token {name:?} is there already: revoke it first"),
                ));
            }
            let t = users::new_token();
            u.set(Entry::Token(name.into(), r, users::token_digest(&t)));
            token = Some(t);
            after = r.name();
            format!("token {name} ({}) created", r.name())
        }
        "revoke" => {
            let old = u
                .token_role(name)
                .ok_or_else(|| refused(StatusCode::NOT_FOUND, format!("no token {name:?}")))?;
            u.remove(true, name);
            before = old.name();
            format!("token {name} ({}) revoked", old.name())
        }
        other => {
            return Err(refused(
                StatusCode::BAD_REQUEST,
                format!("{other:?}: op is add, password, role, delete, token or revoke"),
            ));
        }
    };
    users::save(&app.users_file, &u).map_err(|e| refused(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    app.auth.replace_users(u);
    if end_sessions {
        app.auth.end_sessions_of(name);
    }
    Ok(Done {
        message,
        token,
        before,
        after,
    })
}

/// Run the change on the blocking pool (argon2 and the file), audited.
async fn run(app: &Arc<App>, p: &Principal, o: UserOp) -> Result<Done, (StatusCode, String)> {
    p.require(Role::Admin).map_err(|_| {
        refused(
            StatusCode::FORBIDDEN,
            "forbidden: this needs the admin role",
        )
    })?;
    let pp = p.clone();
    blocking(app, move |app| {
        let r = change(app, &o);
        let kind = if matches!(o.op.as_str(), "token" | "revoke") {
            "token"
        } else {
            "user"
        };
        let (result, before, after) = match &r {
            Ok(d) => (format!("ok: {}", d.message), d.before, d.after),
            Err((_, e)) => (format!("refused: {e}"), "", ""),
        };
        record(
            app,
            (&pp.user, pp.source),
            &format!("users {}", o.op.chars().take(16).collect::<String>()),
            &format!("{kind} {}", o.name.chars().take(64).collect::<String>()),
            before,
            after,
            &result,
        );
        r
    })
    .await
}

/// A row of the users page.
struct Row {
    name: String,
    role: &'static str,
    token: bool,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    path: String,
    rows: Vec<Row>,
    message: Option<String>,
}

fn rows(app: &App) -> Vec<Row> {
    app.auth
        .users()
        .entries()
        .iter()
        .map(|e| match e {
            Entry::User(n, r, _) => Row {
                name: n.clone(),
                role: r.name(),
                token: false,
            },
            Entry::Token(n, r, _) => Row {
                name: n.clone(),
                role: r.name(),
                token: true,
            },
        })
        .collect()
}

pub(super) async fn users_page(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = p.require(Role::Admin) {
        return r;
    }
    let message = take_flash(&app, &p);
    page(&UsersPage {
        user: &p.user,
        role: p.role.name(),
        csrf: &p.csrf,
        path: app.users_file.display().to_string(),
        rows: rows(&app),
        message,
    })
}

pub(super) async fn users_form(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Form(o): Form<UserOp>,
) -> Response {
    match run(&app, &p, o).await {
        Ok(d) => {
            let msg = match d.token {
                Some(t) => format!("{}; it is shown only now: {t}", d.message),
                None => d.message,
            };
            set_flash(&app, &p.csrf, msg);
            Redirect::to("/users").into_response()
        }
        Err((status, e)) => (status, format!("{e}\n")).into_response(),
    }
}

pub(super) async fn api_users(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    if let Err(r) = p.require(Role::Admin) {
        return r;
    }
    let rows = rows(&app);
    let list = |token: bool| {
        rows.iter()
            .filter(|r| r.token == token)
            .map(|r| serde_json::json!({"name": r.name, "role": r.role}))
            .collect::<Vec<_>>()
    };
    Json(serde_json::json!({"users": list(false), "tokens": list(true)})).into_response()
}

pub(super) async fn api_users_post(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Json(o): Json<UserOp>,
) -> Response {
    match run(&app, &p, o).await {
        Ok(d) => Json(serde_json::json!({"ok": true, "message": d.message, "token": d.token}))
            .into_response(),
        Err((status, e)) => {
            (status, Json(serde_json::json!({"ok": false, "error": e}))).into_response()
        }
    }
}
