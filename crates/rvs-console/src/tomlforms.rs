//! Per-object forms for rvs's native TOML (`rvs.toml`, schema in rvs-config `native.rs`):
//! a `[[service]]` (with the global `[fullnat]` pool its FullNAT real servers draw from)
//! and its `[[service.real_server]]`s. The file is edited with `toml_edit`, so comments,
//! key order and formatting of everything the form does not change stay as written; a
//! changed value keeps its trailing comment. A field left blank removes its key; new
//! keys go after the table's last key. The new text then takes the whole-file editor's
//! path ([`crate::config::ConfigStore::apply`]: rvs's parser validates it, diff, conflict
//! check, atomic write, reload, rollback, audit).

use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

/// A form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `[[service]]`.
    Service,
    /// `[[service.real_server]]`.
    Real,
}

/// What a value is in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A string.
    Str,
    /// An integer.
    Int,
    /// `true` or `false`.
    Bool,
    /// An array of strings (one a line, or separated by commas or spaces).
    List,
}

/// One field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name in the form (the key, or `persistence_timeout`, `fullnat_*`).
    pub key: &'static str,
    /// What it is.
    pub label: &'static str,
    /// Its type.
    pub ty: Type,
    /// The values offered (empty: free text).
    pub options: &'static [&'static str],
}

const fn fd(key: &'static str, label: &'static str, ty: Type) -> Field {
    Field {
        key,
        label,
        ty,
        options: &[],
    }
}

const SCHEDULERS: [&str; 15] = [
    "", "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
    "twos",
];
const METHODS: [&str; 5] = ["", "nat", "dr", "tun", "fullnat"];

const SERVICE_FIELDS: &[Field] = &[
    fd("name", "Name", Type::Str),
    fd("vip", "Virtual IP address", Type::Str),
    Field {
        options: &["", "tcp", "udp", "sctp"],
        ..fd("protocol", "Protocol", Type::Str)
    },
    fd(
        "port",
        "Port (0: all ports, persistent services)",
        Type::Int,
    ),
    fd(
        "fwmark",
        "Firewall mark (instead of vip, protocol, port)",
        Type::Int,
    ),
    Field {
        options: &SCHEDULERS,
        ..fd("scheduler", "Scheduler", Type::Str)
    },
    Field {
        options: &METHODS,
        ..fd("method", "Forwarding method of its real servers", Type::Str)
    },
    fd(
        "persistence_timeout",
        "Persistence timeout (seconds; persistence.timeout)",
        Type::Int,
    ),
    Field {
        options: &["", "true", "false"],
        ..fd("synproxy", "SYN proxy (TCP)", Type::Bool)
    },
    fd(
        "fullnat_local_addresses",
        "FullNAT local addresses (global [fullnat] local_addresses; one a line)",
        Type::List,
    ),
    fd(
        "fullnat_ports",
        "FullNAT local ports (global [fullnat] ports, LO-HI)",
        Type::Str,
    ),
];

const REAL_FIELDS: &[Field] = &[
    fd("name", "Name", Type::Str),
    fd("address", "Address", Type::Str),
    fd("port", "Port (blank: the service's)", Type::Int),
    fd("weight", "Weight (0..=65535, 0 quiesces)", Type::Int),
    Field {
        options: &METHODS,
        ..fd(
            "method",
            "Forwarding method (blank: the service's)",
            Type::Str,
        )
    },
    Field {
        options: &["", "true", "false"],
        ..fd("active", "Active", Type::Bool)
    },
];

impl Kind {
    /// From its name in a URL or form.
    pub fn parse(s: &str) -> Option<Kind> {
        [Kind::Service, Kind::Real]
            .into_iter()
            .find(|k| k.name() == s)
    }

    /// Its name in URLs and forms.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Service => "toml-service",
            Kind::Real => "toml-real",
        }
    }

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Kind::Service => "[[service]]",
            Kind::Real => "[[service.real_server]]",
        }
    }

    /// Its fields.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Kind::Service => SERVICE_FIELDS,
            Kind::Real => REAL_FIELDS,
        }
    }
}

fn parse(text: &str) -> Result<DocumentMut, String> {
    text.parse::<DocumentMut>()
        .map_err(|e| format!("the file is not TOML the forms can edit: {e}"))
}

fn services(doc: &DocumentMut) -> Option<&ArrayOfTables> {
    doc.get("service")?.as_array_of_tables()
}

/// A service in the list: its summary and its real servers' addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// `tcp 10.1.0.100:80 wlc` or `fwmark 1 rr`.
    pub name: String,
    /// Its real servers' `address[:port]`.
    pub servers: Vec<String>,
}

fn show(t: &Table, k: &str) -> String {
    t.get(k)
        .and_then(Item::as_value)
        .map(|v| match v {
            Value::String(s) => s.value().clone(),
            other => other.to_string().trim().to_string(),
        })
        .unwrap_or_default()
}

/// The file's services.
pub fn list(text: &str) -> Result<Vec<Object>, String> {
    let doc = parse(text)?;
    let Some(aot) = services(&doc) else {
        return Ok(Vec::new());
    };
    Ok(aot
        .iter()
        .map(|s| {
            let name = if s.contains_key("fwmark") {
                format!("fwmark {} {}", show(s, "fwmark"), show(s, "scheduler"))
            } else {
                let proto = show(s, "protocol");
                format!(
                    "{} {}:{} {}",
                    if proto.is_empty() {
                        "tcp".into()
                    } else {
                        proto
                    },
                    show(s, "vip"),
                    show(s, "port"),
                    show(s, "scheduler")
                )
            };
            let servers = s
                .get("real_server")
                .and_then(Item::as_array_of_tables)
                .map(|rs| {
                    rs.iter()
                        .map(|r| match show(r, "port") {
                            p if p.is_empty() => show(r, "address"),
                            p => format!("{}:{p}", show(r, "address")),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Object {
                name: name.trim().to_string(),
                servers,
            }
        })
        .collect())
}

fn service_mut(doc: &mut DocumentMut, i: usize) -> Result<&mut Table, String> {
    doc.get_mut("service")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|a| a.get_mut(i))
        .ok_or_else(|| format!("no [[service]] #{i}"))
}

fn reals_mut(svc: &mut Table) -> Result<&mut ArrayOfTables, String> {
    if !svc.contains_key("real_server") {
        svc.insert("real_server", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    svc.get_mut("real_server")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| {
            "this service's real servers are an inline array: edit them with the whole-file editor"
                .to_string()
        })
}

fn real_mut(doc: &mut DocumentMut, i: usize, j: usize) -> Result<&mut Table, String> {
    reals_mut(service_mut(doc, i)?)?
        .get_mut(j)
        .ok_or_else(|| format!("no [[service.real_server]] #{j} in [[service]] #{i}"))
}

/// The form's values for service `svc` (and its real server `rs`).
pub fn values(
    text: &str,
    kind: Kind,
    svc: usize,
    rs: Option<usize>,
) -> Result<Vec<(&'static str, String)>, String> {
    let mut doc = parse(text)?;
    let fullnat = doc.get("fullnat").and_then(Item::as_table).cloned();
    let t = match (kind, rs) {
        (Kind::Real, Some(j)) => real_mut(&mut doc, svc, j)?.clone(),
        (Kind::Real, None) => return Err("name the real server".into()),
        (Kind::Service, _) => service_mut(&mut doc, svc)?.clone(),
    };
    Ok(kind
        .fields()
        .iter()
        .map(|f| {
            let v = match f.key {
                "persistence_timeout" => t
                    .get("persistence")
                    .and_then(|p| p.get("timeout"))
                    .and_then(Item::as_value)
                    .map(|v| v.to_string().trim().to_string())
                    .unwrap_or_default(),
                "fullnat_local_addresses" => fullnat
                    .as_ref()
                    .and_then(|f| f.get("local_addresses"))
                    .and_then(Item::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str())
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default(),
                "fullnat_ports" => fullnat
                    .as_ref()
                    .map(|f| show(f, "ports"))
                    .unwrap_or_default(),
                k => show(&t, k),
            };
            (f.key, v)
        })
        .collect())
}

/// A form value as TOML (`None`: blank, the key removed).
fn typed(f: &Field, v: &str) -> Result<Option<Value>, String> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if !f.options.is_empty() && !f.options.contains(&v) {
        return Err(format!("{}: one of {}", f.key, f.options[1..].join(", ")));
    }
    if v.contains(['\n', '\r']) && f.ty != Type::List {
        return Err(format!("{}: one line", f.key));
    }
    Ok(Some(match f.ty {
        Type::Str => Value::from(v),
        Type::Int => Value::from(
            v.parse::<i64>()
                .map_err(|_| format!("{}: a whole number, not {v:?}", f.key))?,
        ),
        Type::Bool => Value::from(v == "true"),
        Type::List => {
            let mut a = toml_edit::Array::new();
            for w in v.split(|c: char| c == ',' || c.is_whitespace()) {
                if !w.is_empty() {
                    a.push(w);
                }
            }
            Value::Array(a)
        }
    }))
}

/// Set `key` in `t` to `v` (the old value's comments kept), or remove it.
fn put(t: &mut Table, key: &str, v: Option<Value>) {
    match v {
        None => {
            t.remove(key);
        }
        Some(mut new) => match t.get_mut(key).and_then(Item::as_value_mut) {
            Some(old) => {
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            None => {
                t.insert(key, Item::Value(new));
            }
        },
    }
}

/// `persistence.timeout` (an inline table or a table), created as `{ timeout = N }`.
fn put_persistence(t: &mut Table, v: Option<Value>) -> Result<(), String> {
    let Some(v) = v else {
        t.remove("persistence");
        return Ok(());
    };
    match t.get_mut("persistence") {
        Some(Item::Value(Value::InlineTable(it))) => {
            match it.get_mut("timeout") {
                Some(old) => {
                    let mut v = v;
                    *v.decor_mut() = old.decor().clone();
                    *old = v;
                }
                None => {
                    it.insert("timeout", v);
                }
            }
            Ok(())
        }
        Some(Item::Table(tt)) => {
            put(tt, "timeout", Some(v));
            Ok(())
        }
        Some(_) => Err("persistence is neither a table nor an inline table".into()),
        None => {
            let mut it = InlineTable::new();
            it.insert("timeout", v);
            t.insert("persistence", Item::Value(Value::InlineTable(it)));
            Ok(())
        }
    }
}

/// What a form asks for: `op` (`apply`/`diff`, `add`, `delete`), the service, its real
/// server, the fields sent.
#[derive(Debug, Clone, Default)]
pub struct Edit<'a> {
    /// `apply` or `diff` (edit), `add`, or `delete`.
    pub op: &'a str,
    /// The service's index (0-based, file order); none to add one.
    pub svc: Option<usize>,
    /// The real server's index in it.
    pub rs: Option<usize>,
    /// The fields sent; a field not sent is left as it is.
    pub fields: Vec<(&'a str, &'a str)>,
}

/// The file's text after the form's change, and what to call it in the audit log.
pub fn edit(text: &str, kind: Kind, e: &Edit<'_>) -> Result<(String, String), String> {
    let mut doc = parse(text)?;
    let field = |k: &str| e.fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let mut svc = e.svc;
    let mut rs = e.rs;
    match (e.op, kind) {
        ("delete", Kind::Service) => {
            let i = svc.ok_or("name the service")?;
            let aot = doc
                .get_mut("service")
                .and_then(Item::as_array_of_tables_mut)
                .filter(|a| i < a.len())
                .ok_or_else(|| format!("no [[service]] #{i}"))?;
            aot.remove(i);
            return Ok((doc.to_string(), format!("delete [[service]] #{i}")));
        }
        ("delete", Kind::Real) => {
            let (i, j) = (
                svc.ok_or("name the service")?,
                rs.ok_or("name the real server")?,
            );
            let aot = reals_mut(service_mut(&mut doc, i)?)?;
            if j >= aot.len() {
                return Err(format!("no [[service.real_server]] #{j}"));
            }
            aot.remove(j);
            return Ok((
                doc.to_string(),
                format!("delete real server #{j} of [[service]] #{i}"),
            ));
        }
        ("add", Kind::Service) => {
            if !doc.contains_key("service") {
                doc.insert("service", Item::ArrayOfTables(ArrayOfTables::new()));
            }
            let aot = doc
                .get_mut("service")
                .and_then(Item::as_array_of_tables_mut)
                .ok_or("`service` is not an array of tables: use the whole-file editor")?;
            aot.push(Table::new());
            svc = Some(aot.len() - 1);
        }
        ("add", Kind::Real) => {
            let aot = reals_mut(service_mut(&mut doc, svc.ok_or("name the service")?)?)?;
            aot.push(Table::new());
            rs = Some(aot.len() - 1);
        }
        _ => {}
    }
    let i = svc.ok_or("name the service")?;
    // What the form showed: a value outside a field's choices that is the file's own is
    // kept as it is.
    let shown = match (e.op, kind, e.svc) {
        ("add", ..) | (_, _, None) => Vec::new(),
        (_, Kind::Service, Some(s)) => values(text, kind, s, None)?,
        (_, Kind::Real, Some(s)) => values(text, kind, s, e.rs)?,
    };
    for f in kind.fields() {
        let Some(v) = field(f.key) else { continue };
        // The same value: the key is left as written (its formatting too).
        let norm = v.trim().replace("\r\n", "\n");
        let norm = if f.ty == Type::List {
            norm.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            norm
        };
        if shown.iter().any(|(k, c)| *k == f.key && *c == norm) {
            continue;
        }
        let v = if shown.iter().any(|(k, c)| *k == f.key && c == v.trim()) && !f.options.is_empty()
        {
            typed(&Field { options: &[], ..*f }, v)?
        } else {
            typed(f, v)?
        };
        match f.key {
            "persistence_timeout" => put_persistence(service_mut(&mut doc, i)?, v)?,
            "fullnat_local_addresses" | "fullnat_ports" => {
                if !doc.contains_key("fullnat") {
                    if v.is_none() {
                        continue;
                    }
                    doc.insert("fullnat", Item::Table(Table::new()));
                }
                let t = doc
                    .get_mut("fullnat")
                    .and_then(Item::as_table_mut)
                    .ok_or("`fullnat` is not a table: use the whole-file editor")?;
                let key = f.key.strip_prefix("fullnat_").expect("a fullnat key");
                put(t, key, v);
                if t.is_empty() {
                    doc.remove("fullnat");
                }
            }
            k => {
                let t = match (kind, rs) {
                    (Kind::Real, Some(j)) => real_mut(&mut doc, i, j)?,
                    (Kind::Real, None) => return Err("name the real server".into()),
                    (Kind::Service, _) => service_mut(&mut doc, i)?,
                };
                put(t, k, v);
            }
        }
    }
    let verb = if e.op == "add" { "add" } else { "edit" };
    let what = match (kind, rs) {
        (Kind::Real, Some(j)) => format!("real server #{j} of [[service]] #{i}"),
        _ => format!("[[service]] #{i}"),
    };
    Ok((doc.to_string(), format!("{verb} {what}")))
}

/// Whether the file is rvs's TOML (named `*.toml`, as the daemon detects it).
pub fn is_toml(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = r#"# rvs director
[timeouts]
tcp = 900

[[service]]
vip = "10.1.0.100"   # the web VIP
port = 80
scheduler = "wlc"
persistence = { timeout = 360, prefix = 24 }
method = "nat"

# first backend
[[service.real_server]]
address = "10.2.0.11"
weight = 1

[[service.real_server]]
address = "10.2.0.12"
weight = 2
"#;

    fn run(
        kind: Kind,
        op: &str,
        svc: Option<usize>,
        rs: Option<usize>,
        f: &[(&str, &str)],
    ) -> String {
        edit(
            T,
            kind,
            &Edit {
                op,
                svc,
                rs,
                fields: f.to_vec(),
            },
        )
        .unwrap()
        .0
    }

    #[test]
    fn a_service_form_keeps_comments_and_order() {
        let t = run(
            Kind::Service,
            "apply",
            Some(0),
            None,
            &[
                ("scheduler", "mh"),
                ("method", "fullnat"),
                ("persistence_timeout", "600"),
                ("vip", "10.1.0.101"),
                ("fullnat_local_addresses", "10.2.0.250\n10.2.0.251"),
                ("fullnat_ports", "1024-65535"),
                ("synproxy", ""),
            ],
        );
        assert_eq!(
            t,
            T.replace(
                "vip = \"10.1.0.100\"   # the web VIP",
                "vip = \"10.1.0.101\"   # the web VIP"
            )
            .replace("scheduler = \"wlc\"", "scheduler = \"mh\"")
            .replace("timeout = 360", "timeout = 600")
            .replace("method = \"nat\"", "method = \"fullnat\"")
                + "\n[fullnat]\nlocal_addresses = [\"10.2.0.250\", \"10.2.0.251\"]\nports = \"1024-65535\"\n"
        );
        let vals = values(&t, Kind::Service, 0, None).unwrap();
        assert!(vals.contains(&("fullnat_local_addresses", "10.2.0.250\n10.2.0.251".into())));
        assert!(vals.contains(&("persistence_timeout", "600".into())));
        // Unchanged values leave their keys as written.
        let odd = T
            .replace("port = 80", "port    =   80")
            .replace("scheduler = \"wlc\"", "scheduler = 'wlc'");
        let same = edit(
            &odd,
            Kind::Service,
            &Edit {
                op: "apply",
                svc: Some(0),
                rs: None,
                fields: vec![("port", "80"), ("scheduler", "wlc"), ("vip", "10.1.0.100")],
            },
        )
        .unwrap()
        .0;
        assert_eq!(same, odd);
        assert!(
            edit(
                T,
                Kind::Service,
                &Edit {
                    op: "apply",
                    svc: Some(0),
                    rs: None,
                    fields: vec![("port", "eighty")]
                }
            )
            .is_err()
        );
        assert!(
            edit(
                T,
                Kind::Service,
                &Edit {
                    op: "apply",
                    svc: Some(0),
                    rs: None,
                    fields: vec![("scheduler", "fastest")]
                }
            )
            .is_err()
        );
    }

    #[test]
    fn real_servers_are_edited_added_and_deleted() {
        let t = run(
            Kind::Real,
            "apply",
            Some(0),
            Some(1),
            &[("weight", "5"), ("port", "8080"), ("name", "")],
        );
        assert_eq!(t, T.replace("weight = 2\n", "weight = 5\nport = 8080\n"));
        let t = run(
            Kind::Real,
            "add",
            Some(0),
            None,
            &[("address", "10.2.0.13"), ("weight", "1"), ("method", "dr")],
        );
        assert_eq!(
            t,
            format!(
                "{T}\n[[service.real_server]]\naddress = \"10.2.0.13\"\nweight = 1\nmethod = \"dr\"\n"
            )
        );
        let t = run(Kind::Real, "delete", Some(0), Some(0), &[]);
        assert_eq!(
            t,
            T.replace(
                "# first backend\n[[service.real_server]]\naddress = \"10.2.0.11\"\nweight = 1\n\n",
                ""
            )
        );
        assert_eq!(list(T).unwrap()[0].servers, ["10.2.0.11", "10.2.0.12"]);
        assert_eq!(
            list(T).unwrap()[0].name,
            "tcp 10.1.0.100:80 \"wlc\"".replace('"', "")
        );
    }

    #[test]
    fn services_are_added_and_deleted() {
        let t = run(
            Kind::Service,
            "add",
            None,
            None,
            &[
                ("vip", "10.1.0.200"),
                ("protocol", "udp"),
                ("port", "53"),
                ("scheduler", "rr"),
            ],
        );
        assert_eq!(
            t,
            format!(
                "{T}\n[[service]]\nvip = \"10.1.0.200\"\nprotocol = \"udp\"\nport = 53\nscheduler = \"rr\"\n"
            )
        );
        let t = run(Kind::Service, "delete", Some(0), None, &[]);
        assert_eq!(t, "# rvs director\n[timeouts]\ntcp = 900\n");
    }
}
