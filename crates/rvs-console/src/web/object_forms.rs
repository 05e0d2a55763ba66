//! The per-object forms of keepalived.conf ([`crate::kaforms`]) and rvs's TOML
//! ([`crate::tomlforms`]) (admin): `GET /config/panels` lists the file's objects when it
//! is not an lvs.cf; `GET /config/form?form=F&vs=&rs=&svc=&vrrp=&new=` shows one form;
//! `POST /config/form` (fields `form`, `vs`, `rs`, `svc`, `vrrp`, `new`, `version`,
//! `op` = `diff` | `apply` | `delete`, `f.KEY` per field) makes the change and takes the
//! same path as lvs.cf's panels ([`panel_forms::finish`]); `POST /api/config/form` is the
//! same as JSON (`{form, vs, rs, svc, vrrp, new, op, version, fields: {KEY: VALUE}}`):
//! `op = "diff"` answers `{ok, diff, errors | effective, text}`, else the apply's answer.

use super::panel_forms::{self, Change, bad};
use super::*;
use crate::{kaforms, panels, tomlforms};

/// Which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Ka(kaforms::Kind),
    Toml(tomlforms::Kind),
}

/// The file's format, as far as the forms care.
fn format_of(path: &std::path::Path) -> &'static str {
    if tomlforms::is_toml(path) {
        "toml"
    } else if kaforms::is_keepalived(path) {
        "keepalived"
    } else if panels::is_lvs_cf(path) {
        "lvs.cf"
    } else {
        "other"
    }
}

impl Which {
    fn parse(s: &str, path: &std::path::Path) -> Result<Which, String> {
        let w = kaforms::Kind::parse(s)
            .map(Which::Ka)
            .or_else(|| tomlforms::Kind::parse(s).map(Which::Toml))
            .ok_or_else(|| format!("no form {s:?}"))?;
        let fits = match w {
            Which::Ka(_) => format_of(path) == "keepalived",
            Which::Toml(_) => format_of(path) == "toml",
        };
        if !fits {
            return Err(format!(
                "form {s:?} does not edit {}: its format is {}",
                path.display(),
                format_of(path)
            ));
        }
        Ok(w)
    }

    fn name(self) -> &'static str {
        match self {
            Which::Ka(k) => k.name(),
            Which::Toml(k) => k.name(),
        }
    }

    fn title(self) -> &'static str {
        match self {
            Which::Ka(k) => k.title(),
            Which::Toml(k) => k.title(),
        }
    }

    /// (key, label, options, multi-line) of each field.
    fn fields(self) -> Vec<(&'static str, &'static str, &'static [&'static str], bool)> {
        match self {
            Which::Ka(k) => k
                .fields()
                .iter()
                .map(|f| (f.key, f.label, f.options, f.multi))
                .collect(),
            Which::Toml(k) => k
                .fields()
                .iter()
                .map(|f| (f.key, f.label, f.options, f.ty == tomlforms::Type::List))
                .collect(),
        }
    }

    fn can_delete(self) -> bool {
        !matches!(self, Which::Ka(kaforms::Kind::Vrrp))
    }
}

/// Which object: what the query or form names.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(super) struct ObjectQuery {
    form: String,
    #[serde(default)]
    vs: String,
    #[serde(default)]
    rs: String,
    #[serde(default)]
    svc: String,
    #[serde(default)]
    vrrp: String,
    #[serde(default)]
    new: String,
}

fn index(s: &str) -> Result<Option<usize>, String> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("{s:?} is not an index"))
}

impl ObjectQuery {
    fn is_new(&self) -> bool {
        self.new == "1" || self.new == "true"
    }

    fn ka_target(&self) -> Result<kaforms::Target, String> {
        Ok(kaforms::Target {
            vs: index(&self.vs)?,
            rs: index(&self.rs)?,
            vrrp: (!self.vrrp.is_empty()).then(|| self.vrrp.clone()),
        })
    }
}

/// The file's text after the form, and the audit's action.
fn edited(
    text: &str,
    which: Which,
    q: &ObjectQuery,
    op: &str,
    fields: &HashMap<String, String>,
) -> Result<(String, String), String> {
    let op = match (q.is_new(), op) {
        (true, "delete") => return Err("a new object is not deleted".into()),
        (true, _) => "add",
        (false, "delete") => "delete",
        _ => "apply",
    };
    let keys = which.fields();
    let sent: Vec<(&str, &str)> = keys
        .iter()
        .filter_map(|(k, ..)| fields.get(*k).map(|v| (*k, v.as_str())))
        .chain(fields.get("name").map(|v| ("name", v.as_str())))
        .collect();
    let (text, what) = match which {
        Which::Ka(kind) => {
            let mut target = q.ka_target()?;
            if op == "add" {
                target.rs = None;
            }
            kaforms::edit(
                text,
                kind,
                &kaforms::Edit {
                    op,
                    target,
                    fields: sent,
                },
            )?
        }
        Which::Toml(kind) => tomlforms::edit(
            text,
            kind,
            &tomlforms::Edit {
                op,
                svc: index(&q.svc)?,
                rs: if op == "add" { None } else { index(&q.rs)? },
                fields: sent,
            },
        )?,
    };
    Ok((text, format!("config form {what}")))
}

/// A row of the objects page.
struct Row {
    index: usize,
    name: String,
    summary: String,
    /// (index, name, checker).
    servers: Vec<(usize, String, String)>,
    /// Its form's query (a VRRP instance's name URL-encoded).
    query: String,
}

#[derive(Template)]
#[template(path = "objects.html")]
struct ObjectsPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    path: String,
    version: String,
    message: Option<String>,
    format: &'static str,
    rows: Vec<Row>,
    vrrps: Vec<Row>,
    error: Option<String>,
}

/// `/config/panels` for a file that is not lvs.cf.
pub(super) fn objects_page(
    p: &Principal,
    store: &ConfigStore,
    message: Option<String>,
) -> Response {
    let (text, version) = match store.read() {
        Ok(x) => x,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    let format = format_of(store.path());
    let mut error = None;
    let (rows, vrrps) = match format {
        "keepalived" => {
            let rows = kaforms::list_virtual(&text)
                .into_iter()
                .enumerate()
                .map(|(index, o)| Row {
                    index,
                    name: o.name,
                    summary: o.summary,
                    servers: o
                        .servers
                        .into_iter()
                        .enumerate()
                        .map(|(i, (n, c))| (i, n, c))
                        .collect(),
                    query: String::new(),
                })
                .collect();
            let vrrps = kaforms::list_vrrp(&text)
                .into_iter()
                .enumerate()
                .map(|(index, o)| Row {
                    index,
                    query: serde_urlencoded::to_string([("form", "ka-vrrp"), ("vrrp", &o.name)])
                        .unwrap_or_default(),
                    name: o.name,
                    summary: o.summary,
                    servers: Vec::new(),
                })
                .collect();
            (rows, vrrps)
        }
        "toml" => match tomlforms::list(&text) {
            Ok(list) => (
                list.into_iter()
                    .enumerate()
                    .map(|(index, o)| Row {
                        index,
                        name: o.name,
                        summary: String::new(),
                        servers: o
                            .servers
                            .into_iter()
                            .enumerate()
                            .map(|(i, n)| (i, n, String::new()))
                            .collect(),
                        query: String::new(),
                    })
                    .collect(),
                Vec::new(),
            ),
            Err(e) => {
                error = Some(e);
                (Vec::new(), Vec::new())
            }
        },
        _ => (Vec::new(), Vec::new()),
    };
    page(&ObjectsPage {
        user: &p.user,
        role: p.role.name(),
        csrf: &p.csrf,
        path: store.path().display().to_string(),
        version,
        message,
        format,
        rows,
        vrrps,
        error,
    })
}

/// A field of a form.
struct FieldView {
    key: &'static str,
    label: &'static str,
    /// (value, selected); empty: a text input.
    options: Vec<(String, bool)>,
    multi: bool,
    value: String,
}

#[derive(Template)]
#[template(path = "form.html")]
struct FormPage<'a> {
    user: &'a str,
    role: &'a str,
    csrf: &'a str,
    title: &'static str,
    form: &'static str,
    path: String,
    version: String,
    /// Hidden fields naming the object.
    hidden: Vec<(&'static str, String)>,
    is_new: bool,
    /// A new object's name field (a VRRP instance).
    can_delete: bool,
    fields: Vec<FieldView>,
}

pub(super) async fn form_page(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Query(q): Query<ObjectQuery>,
) -> Response {
    with_store(&app, &p.clone(), move |_, store| {
        let which = match Which::parse(&q.form, store.path()) {
            Ok(w) => w,
            Err(e) => return bad(e),
        };
        let (text, version) = match store.read() {
            Ok(x) => x,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
        let is_new = q.is_new();
        let values = if is_new {
            Ok(Vec::new())
        } else {
            match which {
                Which::Ka(k) => q.ka_target().and_then(|t| kaforms::values(&text, k, &t)),
                Which::Toml(k) => index(&q.svc)
                    .and_then(|s| s.ok_or_else(|| "name the service".to_string()))
                    .and_then(|s| Ok((s, index(&q.rs)?)))
                    .and_then(|(s, r)| tomlforms::values(&text, k, s, r)),
            }
        };
        let values = match values {
            Ok(v) => v,
            Err(e) => return bad(e),
        };
        let fields = which
            .fields()
            .into_iter()
            .map(|(key, label, options, multi)| {
                let value = values
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let mut options: Vec<(String, bool)> = options
                    .iter()
                    .map(|o| (o.to_string(), *o == value))
                    .collect();
                // The file's own value outside the choices (`lb_kind TUN gue 6080`) is
                // offered, selected, so an edit of another field keeps it.
                if !options.is_empty() && !value.is_empty() && !options.iter().any(|(_, s)| *s) {
                    options.insert(1, (value.clone(), true));
                }
                FieldView {
                    key,
                    label,
                    options,
                    multi,
                    value,
                }
            })
            .collect();
        let hidden = [
            ("vs", &q.vs),
            ("rs", &q.rs),
            ("svc", &q.svc),
            ("vrrp", &q.vrrp),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .filter(|(k, _)| !(is_new && *k == "rs"))
        .map(|(k, v)| (k, v.clone()))
        .collect();
        page(&FormPage {
            user: &p.user,
            role: p.role.name(),
            csrf: &p.csrf,
            title: which.title(),
            form: which.name(),
            path: store.path().display().to_string(),
            version,
            hidden,
            is_new,
            can_delete: !is_new && which.can_delete(),
            fields,
        })
    })
    .await
}

pub(super) async fn form_post(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    with_store(&app, &p.clone(), move |app, store| {
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let q = ObjectQuery {
            form: get("form"),
            vs: get("vs"),
            rs: get("rs"),
            svc: get("svc"),
            vrrp: get("vrrp"),
            new: get("new"),
        };
        let (old, current) = match store.read() {
            Ok(x) => x,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
        let fields: HashMap<String, String> = f
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("f.").map(|k| (k.to_string(), v.clone())))
            .collect();
        let op = get("op");
        let edited =
            Which::parse(&q.form, store.path()).and_then(|w| edited(&old, w, &q, &op, &fields));
        panel_forms::finish(
            app,
            &p,
            store,
            Change {
                old: &old,
                current: &current,
                version: get("version"),
                edited,
                audit: "config form",
                diff_only: op == "diff",
                back: "/config/panels",
            },
        )
    })
    .await
}

/// `POST /api/config/form`'s body.
#[derive(serde::Deserialize)]
pub(super) struct FormJson {
    form: String,
    vs: Option<usize>,
    rs: Option<usize>,
    svc: Option<usize>,
    vrrp: Option<String>,
    #[serde(default)]
    new: bool,
    #[serde(default)]
    op: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    fields: HashMap<String, String>,
}

pub(super) async fn api_form(
    State(app): Shared,
    Extension(p): Extension<Principal>,
    Json(j): Json<FormJson>,
) -> Response {
    let n = |i: Option<usize>| i.map(|i| i.to_string()).unwrap_or_default();
    let q = ObjectQuery {
        form: j.form.clone(),
        vs: n(j.vs),
        rs: n(j.rs),
        svc: n(j.svc),
        vrrp: j.vrrp.clone().unwrap_or_default(),
        new: if j.new { "1".into() } else { String::new() },
    };
    with_store(&app, &p.clone(), move |app, store| {
        let old = match store.read() {
            Ok((t, _)) => t,
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        };
        let edited =
            Which::parse(&q.form, store.path()).and_then(|w| edited(&old, w, &q, &j.op, &j.fields));
        let (text, action) = match edited {
            Ok(x) => x,
            Err(e) => {
                record(
                    app,
                    (&p.user, p.source),
                    "config form",
                    &store.path().display().to_string(),
                    "",
                    "",
                    &format!("refused: {e}"),
                );
                return (
                    StatusCode::BAD_REQUEST,
                    Json(serde_json::json!({"ok": false, "error": e})),
                )
                    .into_response();
            }
        };
        if j.op == "diff" {
            let name = store
                .path()
                .file_name()
                .map_or("config".into(), |n| n.to_string_lossy().into_owned());
            let d = crate::config::diff(&name, &old, &text);
            return match store.validate(&*app.control, &text) {
                Ok(eff) => {
                    Json(serde_json::json!({"ok": true, "diff": d, "effective": eff, "text": text}))
                        .into_response()
                }
                Err(e) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    Json(serde_json::json!({"ok": false, "diff": d, "errors": e, "text": text})),
                )
                    .into_response(),
            };
        }
        let r = store.apply(&*app.control, &text, &j.version);
        applied_json(app, &p, &action, r, &j.version)
    })
    .await
}
