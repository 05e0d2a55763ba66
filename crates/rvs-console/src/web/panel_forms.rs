//! The per-panel pages (admin): `GET /config/panels` (GLOBAL SETTINGS, REDUNDANCY and the
//! VIRTUAL SERVERS table), `GET /config/panel?panel=P&virtual=V&server=S[&new=1]` (one
//! panel's form) and `POST /config/panel` (form fields `panel`, `virtual`, `server`,
//! `new`, `name`, `version`, `op` = `diff` | `apply` | `delete`, and `f.KEY` per field).
//! The form becomes the file's new text ([`crate::panels`]) and takes the whole-file
//! editor's path: `diff` shows it on the configuration page (diff, the parser's verdict,
//! and its Apply button); `apply` and `delete` apply it (conflict check, validation,
//! atomic write with `serial_no` + 1, reload, audit).

use super::*;
use crate::panels::{self, Panel, Scope};

/// A row of the VIRTUAL SERVERS table.
struct VirtualRow {
    name: String,
    status: String,
    address: String,
    netmask: String,
    port: String,
    protocol: String,
    servers: Vec<String>,
}

#[derive(Template)]
#[template(path = "panels.html")]
struct PanelsPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    path: String,
    version: String,
    lvs_cf: bool,
    virtuals: Vec<VirtualRow>,
    message: Option<String>,
}

/// A field of a panel's form.
struct FieldView {
    key: &'static str,
    /// The form's name: `f.KEY`, or `g.KEY` for a top-level key.
    name: String,
    label: &'static str,
    value: String,
}

#[derive(Template)]
#[template(path = "panel.html")]
struct PanelPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    title: &'static str,
    panel: &'static str,
    path: String,
    version: String,
    virt: String,
    server: String,
    is_new: bool,
    fields: Vec<FieldView>,
}

pub(super) async fn panels_page(
    State(app): Shared,
    Extension(p): Extension<Principal>,
) -> Response {
    let message = take_flash(&app, &p);
    with_store(&app, &p.clone(), move |_, store| {
        if !panels::is_lvs_cf(store.path()) {
            return super::object_forms::objects_page(&p, store, message);
        }
        let (text, version) = match store.read() {
            Ok(x) => x,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
        let top = Scope::default();
        let virtuals = panels::names(&text, &top, "virtual")
            .into_iter()
            .map(|name| {
                let s = Scope {
                    virt: Some(name.clone()),
                    server: None,
                };
                let get = |k| panels::get(&text, &s, k).unwrap_or_default();
                VirtualRow {
                    status: if get("active") == "1" { "up" } else { "down" }.into(),
                    address: get("address"),
                    netmask: get("vip_nmask"),
                    port: get("port"),
                    protocol: get("protocol"),
                    servers: panels::names(&text, &s, "server"),
                    name,
                }
            })
            .collect();
        page(&PanelsPage {
            user: &p.user,
            role: p.role.name(),
            csrf: &p.csrf,
            path: store.path().display().to_string(),
            version,
            lvs_cf: panels::is_lvs_cf(store.path()),
            virtuals,
            message,
        })
    })
    .await
}

/// `?panel=&virtual=&server=&new=`.
#[derive(serde::Deserialize)]
pub(super) struct PanelQuery {
    panel: String,
    #[serde(default, rename = "virtual")]
    virt: String,
    #[serde(default)]
    server: String,
    #[serde(default)]
    new: String,
}

/// The panel and block a request names (an empty name is none).
fn scope_of(panel: &str, virt: &str, server: &str) -> Result<(Panel, Scope), String> {
    let panel = Panel::parse(panel).ok_or_else(|| format!("no panel {panel:?}"))?;
    let name = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let scope = Scope {
        virt: name(virt).filter(|_| panel.needs_virtual()),
        server: name(server).filter(|_| panel == Panel::Server),
    };
    Ok((panel, scope))
}

pub(super) fn bad(e: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response()
}

pub(super) async fn panel_page(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Query(q): Query<PanelQuery>,
) -> Response {
    with_store(&app, &p.clone(), move |_, store| {
        if !panels::is_lvs_cf(store.path()) {
            return Redirect::to("/config/panels").into_response();
        }
        let (panel, scope) = match scope_of(&q.panel, &q.virt, &q.server) {
            Ok(x) => x,
            Err(e) => return bad(e),
        };
        let is_new = q.new == "1" && matches!(panel, Panel::Virtual | Panel::Server);
        let (text, version) = match store.read() {
            Ok(x) => x,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
        let mut fields: Vec<FieldView> = panel
            .fields()
            .iter()
            .map(|&(key, label)| FieldView {
                key,
                name: format!("f.{key}"),
                label,
                value: if is_new {
                    String::new()
                } else {
                    panels::get(&text, &scope, key).unwrap_or_default()
                },
            })
            .collect();
        fields.extend(panel.global_fields().iter().map(|&(key, label)| FieldView {
            key,
            name: format!("g.{key}"),
            label,
            value: panels::get(&text, &Scope::default(), key).unwrap_or_default(),
        }));
        page(&PanelPage {
            user: &p.user,
            role: p.role.name(),
            csrf: &p.csrf,
            title: panel.title(),
            panel: panel.name(),
            path: store.path().display().to_string(),
            version,
            virt: scope.virt.clone().unwrap_or_default(),
            server: if is_new {
                String::new()
            } else {
                scope.server.clone().unwrap_or_default()
            },
            is_new,
            fields,
        })
    })
    .await
}

/// The file's text after the form's change, and what to call the change in the audit log.
fn edited(text: &str, f: &HashMap<String, String>) -> Result<(String, String), String> {
    let field = |k: &str| f.get(k).map(String::as_str).unwrap_or_default();
    let (panel, mut scope) = scope_of(field("panel"), field("virtual"), field("server"))?;
    if panel.needs_virtual()
        && scope.virt.is_none()
        && !(panel == Panel::Virtual && field("new") == "1")
    {
        return Err("name the virtual server".into());
    }
    let mut text = text.to_string();
    if field("op") == "delete" {
        if !matches!(panel, Panel::Virtual | Panel::Server) {
            return Err("only a virtual or real server is deleted".into());
        }
        text = panels::delete_block(&text, &scope)?;
        return Ok((text, format!("config delete {}", describe(panel, &scope))));
    }
    if field("new") == "1" {
        let name = field("name").trim();
        match panel {
            Panel::Virtual => {
                text = panels::add_block(&text, &Scope::default(), "virtual", name)?;
                scope.virt = Some(name.into());
            }
            Panel::Server => {
                let parent = Scope {
                    virt: scope.virt.clone(),
                    server: None,
                };
                text = panels::add_block(&text, &parent, "server", name)?;
                scope.server = Some(name.into());
            }
            _ => return Err("only a virtual or real server is added".into()),
        }
    }
    for (key, _) in panel.fields() {
        if let Some(v) = f.get(&format!("f.{key}")) {
            text = panels::set(&text, &scope, key, v)?;
        }
    }
    for (key, _) in panel.global_fields() {
        if let Some(v) = f.get(&format!("g.{key}")) {
            text = panels::set(&text, &Scope::default(), key, v)?;
        }
    }
    let verb = if field("new") == "1" { "add" } else { "panel" };
    Ok((text, format!("config {verb} {}", describe(panel, &scope))))
}

/// `server svc0/rs4`, `global`.
fn describe(panel: Panel, s: &Scope) -> String {
    let mut d = panel.name().to_string();
    if let Some(v) = &s.virt {
        d = format!("{d} {v}");
        if let Some(r) = &s.server {
            d = format!("{d}/{r}");
        }
    }
    d
}

pub(super) async fn panel_post(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    with_store(&app, &p.clone(), move |app, store| {
        if !panels::is_lvs_cf(store.path()) {
            return bad("the panels edit lvs.cf only: use the whole-file editor".into());
        }
        let version = f.get("version").cloned().unwrap_or_default();
        let (old, current) = match store.read() {
            Ok(x) => x,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
        let op = f.get("op").map(String::as_str).unwrap_or_default();
        finish(
            app,
            &p,
            store,
            Change {
                old: &old,
                current: &current,
                version,
                edited: edited(&old, &f),
                audit: "config panel",
                diff_only: op == "diff",
                back: "/config/panels",
            },
        )
    })
    .await
}

/// A form's change to the file, ready for [`finish`].
pub(super) struct Change<'a> {
    /// The file's text when the request came.
    pub old: &'a str,
    /// Its version.
    pub current: &'a str,
    /// The version the form was loaded at.
    pub version: String,
    /// The new text and the audit's action, or why the form is refused.
    pub edited: Result<(String, String), String>,
    /// The audit's action for a refused form.
    pub audit: &'static str,
    /// Show the diff and the parser's verdict only.
    pub diff_only: bool,
    /// Where to go after applying.
    pub back: &'static str,
}

/// A form's change: refused (400, audited), shown as a diff with the parser's verdict and
/// the conflict check, or applied (conflict check, validation, atomic write, reload,
/// audit) and redirected to `back` with a message.
pub(super) fn finish(app: &App, p: &Principal, store: &ConfigStore, c: Change<'_>) -> Response {
    let Change {
        old,
        current,
        version,
        edited,
        audit,
        diff_only,
        back,
    } = c;
    let (text, action) = match edited {
        Ok(x) => x,
        Err(e) => {
            record(
                app,
                (&p.user, p.source),
                audit,
                &store.path().display().to_string(),
                "",
                "",
                &format!("refused: {e}"),
            );
            return bad(e);
        }
    };
    if diff_only {
        let name = store
            .path()
            .file_name()
            .map_or("config".into(), |n| n.to_string_lossy().into_owned());
        let d = crate::config::diff(&name, old, &text);
        let conflict = (current != version).then(|| {
            format!("{} changed since the form was loaded (version {version}, now {current}): load it again", store.path().display())
        });
        let (errors, effective) = match (conflict, store.validate(&*app.control, &text)) {
            (Some(c), _) => (Some(c), None),
            (None, Ok(eff)) => (None, Some(eff)),
            (None, Err(e)) => (Some(e), None),
        };
        let status = if errors.is_some() {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        let mut r = config_view(app, p, text, version, d, errors, effective, None);
        *r.status_mut() = status;
        return r;
    }
    let r = store.apply(&*app.control, &text, &version);
    audit_apply(app, p, &action, &r, &version);
    app.refresh.notify_one();
    match r {
        Ok(a) => {
            set_flash(
                app,
                &p.csrf,
                format!(
                    "Applied {action} (previous version kept as {}); the daemon: {}",
                    a.saved, a.reload
                ),
            );
            Redirect::to(back).into_response()
        }
        Err(e) => {
            // The text the form made, with the parser's messages about it.
            let mut r = config_view(
                app,
                p,
                text,
                version,
                String::new(),
                Some(e.message().to_string()),
                None,
                None,
            );
            *r.status_mut() = refusal_status(&e);
            r
        }
    }
}
