//! The peer panel ([`crate::peer`]): `GET /peer` and `GET /api/peer` (viewer) show the
//! backup's failover state and whether its configuration is this one's; `POST /peer/copy`
//! (form) and `POST /api/peer/copy` (admin) copy this director's file to it through the
//! peer's `POST /api/config/apply`, audited here as `config copy to peer`.

use super::*;

#[derive(Template)]
#[template(path = "peer.html")]
struct PeerPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    peer: Option<String>,
    failover: String,
    own_version: String,
    peer_version: String,
    error: Option<String>,
    can_copy: bool,
    message: Option<String>,
}

/// What the peer says.
#[derive(Debug, Default, serde::Serialize)]
struct PeerStatus {
    url: Option<String>,
    /// Its `list --failover` text.
    failover: String,
    /// Its configuration's version without the `serial_no` line (which every write
    /// counts up on each director).
    version: String,
    /// This director's, the same way.
    own_version: String,
    /// What went wrong.
    error: Option<String>,
}

/// The text without its `serial_no` line, for comparing two directors' files.
fn unserialed(text: &str) -> String {
    crate::config::version_of(
        &text
            .lines()
            .filter(|l| !l.trim_start().starts_with("serial_no"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn json_field(body: &str, field: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get(field)?.as_str().map(String::from)
}

async fn status(app: &Arc<App>) -> PeerStatus {
    let Some(peer) = &app.peer else {
        return PeerStatus::default();
    };
    let mut s = PeerStatus {
        url: Some(peer.url.clone()),
        ..PeerStatus::default()
    };
    let mut errors = Vec::new();
    match peer.request("GET", "/api/failover", None).await {
        Ok((200, body)) => s.failover = json_field(&body, "text").unwrap_or_default(),
        Ok((code, body)) => errors.push(format!("/api/failover: {code} {}", body.trim())),
        Err(e) => errors.push(e),
    }
    match peer.request("GET", "/api/config", None).await {
        Ok((200, body)) => {
            s.version = json_field(&body, "text")
                .map(|t| unserialed(&t))
                .unwrap_or_default()
        }
        Ok((code, body)) => errors.push(format!("/api/config: {code} {}", body.trim())),
        Err(e) if errors.is_empty() => errors.push(e),
        Err(_) => {}
    }
    if let Some(store) = &app.config {
        let st = store.path().to_path_buf();
        s.own_version = tokio::task::spawn_blocking(move || std::fs::read_to_string(st).ok())
            .await
            .ok()
            .flatten()
            .map(|t| unserialed(&t))
            .unwrap_or_default();
    }
    if !errors.is_empty() {
        s.error = Some(errors.join("; "));
    }
    s
}

pub(super) async fn peer_page(State(app): Shared, Extension(p): Extension<Principal>) -> Response {
    let s = status(&app).await;
    let message = take_flash(&app, &p);
    page(&PeerPage {
        user: &p.user,
        role: p.role.name(),
        csrf: &p.csrf,
        peer: s.url,
        failover: s.failover,
        own_version: s.own_version,
        peer_version: s.version,
        error: s.error,
        can_copy: p.role >= Role::Admin && app.config.is_some(),
        message,
    })
}

pub(super) async fn api_peer(State(app): Shared) -> Response {
    Json(status(&app).await).into_response()
}

/// Copy the file to the peer for `p` (admin); audited whatever the result.
async fn copy(app: &Arc<App>, p: &Principal) -> Result<String, (StatusCode, String)> {
    let object = app.peer.as_ref().map_or(String::new(), |x| x.url.clone());
    let refuse = |status: StatusCode, why: String| {
        record(
            app,
            (&p.user, p.source),
            "config copy to peer",
            &object,
            "",
            "",
            &format!("refused: {why}"),
        );
        Err((status, why))
    };
    if p.role < Role::Admin {
        return refuse(StatusCode::FORBIDDEN, "this needs the admin role".into());
    }
    let (Some(peer), Some(store)) = (&app.peer, &app.config) else {
        return refuse(
            StatusCode::NOT_FOUND,
            "no peer or no configuration file (--peer, --config)".into(),
        );
    };
    let path = store.path().to_path_buf();
    let text = match tokio::task::spawn_blocking(move || std::fs::read_to_string(path)).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let base = match peer.request("GET", "/api/config", None).await {
        Ok((200, body)) => json_field(&body, "version").unwrap_or_default(),
        Ok((code, body)) => {
            return refuse(
                StatusCode::BAD_GATEWAY,
                format!("the peer's /api/config: {code} {}", body.trim()),
            );
        }
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, e),
    };
    let body = serde_json::json!({"text": text, "version": base}).to_string();
    let r = peer.request("POST", "/api/config/apply", Some(body)).await;
    let (code, answer) = match r {
        Ok(x) => x,
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, e),
    };
    let v: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
    if code == 200 && v["ok"] == true {
        let after = v["applied"]["after"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let reload = v["applied"]["reload"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        record(
            app,
            (&p.user, p.source),
            "config copy to peer",
            &object,
            &format!("peer version {base}"),
            &format!("peer version {after}"),
            &format!("ok: {reload}"),
        );
        Ok(format!(
            "Copied to {object}: the peer's version is now {after}; its daemon: {reload}"
        ))
    } else {
        let why = v["error"]
            .as_str()
            .map_or_else(|| format!("{code} {}", answer.trim()), String::from);
        refuse(
            StatusCode::BAD_GATEWAY,
            format!("the peer refused ({code}): {why}"),
        )
    }
}

pub(super) async fn peer_copy_form(
    State(app): Shared,
    Extension(p): Extension<Principal>,
) -> Response {
    match copy(&app, &p).await {
        Err((StatusCode::FORBIDDEN, e)) => {
            (StatusCode::FORBIDDEN, format!("{e}\n")).into_response()
        }
        r => {
            set_flash(
                &app,
                &p.csrf,
                r.unwrap_or_else(|(_, e)| format!("Copy refused: {e}")),
            );
            Redirect::to("/peer").into_response()
        }
    }
}

pub(super) async fn api_peer_copy(
    State(app): Shared,
    Extension(p): Extension<Principal>,
) -> Response {
    match copy(&app, &p).await {
        Ok(m) => Json(serde_json::json!({"ok": true, "message": m})).into_response(),
        Err((status, e)) => {
            (status, Json(serde_json::json!({"ok": false, "error": e}))).into_response()
        }
    }
}
