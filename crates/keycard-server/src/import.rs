//! `keycard user import`: accounts brought over from another system (a Flask app), with their
//! password hashes as they are.
//!
//! The input is a JSON array of objects, or JSON lines (one object a line; blank lines are
//! skipped): an input whose first non-space character is `[` is an array. Each object is
//! `{"username": ..., "password_hash": ..., "email": ... (optional), "roles": [...] (optional)}`;
//! any other field is refused (a misspelt `pasword_hash` must not import an account without a
//! password). Every record is checked in full before anything is written: the username by the
//! rule for new accounts ([`Username::parse`]), the email and the roles by theirs, the hash by
//! [`crate::password::recognise`] (known format, well-formed, parameters within bounds),
//! duplicates within the input (case-insensitively, as logins compare), and accounts that already
//! exist in the database. Every problem is reported with its place (`line N` for JSON lines,
//! `element N` for an array, both counted from 1) and username, and if there is any, nothing is
//! imported. Otherwise all accounts are written in one transaction ([`Store::create_users`]): all
//! or none.
//!
//! Existing accounts are refused by default; with `--skip-existing` they are left as they are
//! (not updated) and listed. The stored hashes keep their format until each account's first
//! login, which replaces its hash by an Argon2id one ([`crate::password::Passwords::verify_login`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use keycard_store::{AuditEvent, AuditKind, Email, NewUser, Roles, Store, StoreError, Username};
use serde::Deserialize;
use serde_json::Value;

use crate::password::{Scheme, recognise};

/// The largest input read, in bytes (about a million accounts).
pub const MAX_INPUT_BYTES: u64 = 256 * 1024 * 1024;

/// One object of the input, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    username: String,
    password_hash: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

/// Where in the input a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// The whole input (it is not JSON at all, or holds no record).
    Input,
    /// A line of JSON lines, from 1.
    Line(usize),
    /// An element of a JSON array, from 1.
    Element(usize),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Input => f.write_str("input"),
            Position::Line(n) => write!(f, "line {n}"),
            Position::Element(n) => write!(f, "element {n}"),
        }
    }
}

/// Something wrong with one record (or the whole input). Its text never holds a password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub at: Position,
    /// The record's username, if it has one.
    pub username: Option<String>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.username {
            // Quoted and escaped: a name from a file must not write control characters to a terminal.
            Some(name) => write!(f, "{}, user {name:?}: {}", self.at, self.msg),
            None => write!(f, "{}: {}", self.at, self.msg),
        }
    }
}

/// The problems that stopped an import; nothing was written.
#[derive(Debug, thiserror::Error)]
#[error("{} problem{} in the input, nothing imported", .0.len(), if .0.len() == 1 { "" } else { "s" })]
pub struct Refused(pub Vec<Problem>);

/// A record that passed every check but the database's.
#[derive(Debug)]
pub struct Account {
    /// Where it was.
    pub at: Position,
    /// The username.
    pub username: Username,
    /// The email.
    pub email: Option<Email>,
    /// The roles.
    pub roles: Roles,
    /// The hash, as given.
    password_hash: String,
    /// Its kind.
    pub scheme: Scheme,
}

/// Parses and checks the whole input; every problem, or every account.
pub fn parse(input: &str) -> Result<Vec<Account>, Refused> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let values: Vec<(Position, Result<Value, String>)> = if input.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<Value>>(input) {
            Ok(values) => values.into_iter().enumerate().map(|(i, v)| (Position::Element(i + 1), Ok(v))).collect(),
            Err(e) => {
                let msg = format!("not a valid JSON array: {e}");
                return Err(Refused(vec![Problem { at: Position::Input, username: None, msg }]));
            }
        }
    } else {
        input
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                let parsed = serde_json::from_str::<Value>(line).map_err(|e| {
                    format!("not valid JSON: {}", e.to_string().replace(" at line 1 column ", " at column "))
                });
                (Position::Line(i + 1), parsed)
            })
            .collect()
    };
    if values.is_empty() {
        let msg = "no accounts in the input (a JSON array or JSON lines of {\"username\", \"password_hash\", ...})";
        return Err(Refused(vec![Problem { at: Position::Input, username: None, msg: msg.into() }]));
    }
    let mut problems = Vec::new();
    let mut accounts = Vec::new();
    let mut seen: HashMap<String, (Position, String)> = HashMap::new();
    for (at, value) in values {
        let value = match value {
            Ok(value) => value,
            Err(msg) => {
                problems.push(Problem { at, username: None, msg });
                continue;
            }
        };
        let name = value.get("username").and_then(Value::as_str).map(str::to_owned);
        let problem = |msg: String| Problem { at, username: name.clone(), msg };
        if !value.is_object() {
            problems.push(problem("expected an object with username and password_hash".into()));
            continue;
        }
        let record = match serde_json::from_value::<Record>(value) {
            Ok(record) => record,
            Err(e) => {
                problems.push(problem(e.to_string()));
                continue;
            }
        };
        let before = problems.len();
        let username = Username::parse(&record.username).map_err(|e| problems.push(problem(e.to_string()))).ok();
        let email = match record.email.as_deref().map(Email::parse).transpose() {
            Ok(email) => email,
            Err(e) => {
                problems.push(problem(e.to_string()));
                None
            }
        };
        let roles =
            Roles::parse(record.roles.unwrap_or_default()).map_err(|e| problems.push(problem(e.to_string()))).ok();
        let scheme = match recognise(&record.password_hash) {
            Ok(recognised) => Some(recognised.scheme()),
            Err(e) => {
                problems.push(problem(format!("password_hash: {e}")));
                None
            }
        };
        if let Some(username) = &username {
            match seen.get(username.key()) {
                Some((first, first_name)) => {
                    problems.push(problem(format!("the same username as {first} ({first_name:?})")));
                }
                None => {
                    seen.insert(username.key().to_owned(), (at, record.username.clone()));
                }
            }
        }
        if problems.len() > before {
            continue;
        }
        if let (Some(username), Some(roles), Some(scheme)) = (username, roles, scheme) {
            accounts.push(Account { at, username, email, roles, password_hash: record.password_hash, scheme });
        }
    }
    if problems.is_empty() { Ok(accounts) } else { Err(Refused(problems)) }
}

/// What an import did (or, dry, would do).
#[derive(Debug, Default)]
pub struct Summary {
    /// Accounts imported, by hash kind.
    pub imported: BTreeMap<Scheme, usize>,
    /// Usernames that already existed and were left as they are (`--skip-existing`).
    pub skipped: Vec<String>,
    /// Whether nothing was written (`--dry-run`).
    pub dry_run: bool,
    /// The accounts imported, with their hash kind, in input order.
    pub accounts: Vec<(String, Scheme)>,
}

impl Summary {
    /// Accounts imported in all.
    pub fn total(&self) -> usize {
        self.imported.values().sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.total();
        let verb = if self.dry_run { "would import" } else { "imported" };
        write!(f, "{verb} {total} user{}", if total == 1 { "" } else { "s" })?;
        let kinds: Vec<String> = Scheme::ALL
            .iter()
            .filter_map(|scheme| self.imported.get(scheme).map(|n| format!("{n} {}", scheme.label())))
            .collect();
        if !kinds.is_empty() {
            write!(f, ": {}", kinds.join(", "))?;
        }
        if !self.skipped.is_empty() {
            let names: Vec<String> = self.skipped.iter().map(|n| format!("{n:?}")).collect();
            write!(f, "\nskipped {} existing: {}", self.skipped.len(), names.join(", "))?;
        }
        Ok(())
    }
}

/// Why [`import`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Records the database refuses (accounts that exist).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The database failed; nothing was written (one transaction).
    #[error("writing the accounts (nothing imported): {0}")]
    Store(#[from] StoreError),
}

/// Writes `accounts` in one transaction, after refusing (or, with `skip_existing`, leaving out)
/// those that exist. With `dry_run`, checks but writes nothing.
pub async fn import(
    store: &Store,
    accounts: Vec<Account>,
    skip_existing: bool,
    dry_run: bool,
    now: i64,
) -> Result<Summary, ImportError> {
    let mut summary = Summary { dry_run, ..Summary::default() };
    let mut problems = Vec::new();
    let mut new = Vec::with_capacity(accounts.len());
    for account in &accounts {
        if store.user_exists(&account.username).await? {
            if skip_existing {
                summary.skipped.push(account.username.as_str().to_owned());
            } else {
                problems.push(Problem {
                    at: account.at,
                    username: Some(account.username.as_str().to_owned()),
                    msg: "an account with this username already exists (--skip-existing leaves it as it is)".into(),
                });
            }
            continue;
        }
        new.push(account);
    }
    if !problems.is_empty() {
        return Err(Refused(problems).into());
    }
    let users: Vec<NewUser<'_>> = new
        .iter()
        .map(|a| NewUser {
            username: &a.username,
            email: a.email.as_ref(),
            password_hash: &a.password_hash,
            roles: &a.roles,
            now,
        })
        .collect();
    if !dry_run {
        match store.create_users(&users).await {
            Ok(_) => {}
            Err(StoreError::Conflict) => {
                return Err(Refused(vec![Problem {
                    at: Position::Input,
                    username: None,
                    msg: "an account of the input was created in the database meanwhile; run the import again".into(),
                }])
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    for account in new {
        *summary.imported.entry(account.scheme).or_default() += 1;
        summary.accounts.push((account.username.as_str().to_owned(), account.scheme));
    }
    Ok(summary)
}

/// Records one `user_registered` audit event per imported account (actor `cli`, source
/// `import`, the hash kind), in batches. After the import has committed: a failure here leaves
/// the accounts imported.
pub async fn audit(store: &Store, summary: &Summary, now: i64) -> Result<(), StoreError> {
    for batch in summary.accounts.chunks(1000) {
        let events: Vec<AuditEvent> = batch
            .iter()
            .map(|(username, scheme)| AuditEvent {
                username: Some(username.clone()),
                detail: Some(serde_json::json!({ "actor": "cli", "source": "import", "hash": scheme.label() })),
                ..AuditEvent::new(AuditKind::UserRegistered, now)
            })
            .collect();
        store.record_audit_batch(&events).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$04$fYBPB3NJ243wyedwIMMj3uw3A7BildXhSrWD.vAJBVXHAYVr3fJ/u";

    fn problems(input: &str) -> Vec<String> {
        parse(input).unwrap_err().0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn arrays_and_json_lines_are_told_apart_by_their_first_character() {
        let line = format!(r#"{{"username": "ann", "password_hash": "{BCRYPT}", "email": "ann@example.com"}}"#);
        let lines = format!("\n{line}\n\n{}\n", line.replace("ann", "bob"));
        let accounts = parse(&lines).unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[1].at, Position::Line(4));
        assert_eq!(accounts[0].email.as_ref().map(Email::as_str), Some("ann@example.com"));
        let array = format!("  [{line}, {}]", line.replace("ann", "cy"));
        let accounts = parse(&array).unwrap();
        assert_eq!(accounts[1].at, Position::Element(2));
        assert_eq!(accounts[1].scheme, Scheme::Bcrypt);
    }

    #[test]
    fn every_bad_record_is_reported_with_its_place_and_username() {
        let input = [
            format!(r#"{{"username": "ann", "password_hash": "{BCRYPT}"}}"#),
            r#"{"username": "bob", "password_hash": "md5$x$y"}"#.to_owned(),
            format!(r#"{{"username": "ANN", "password_hash": "{BCRYPT}"}}"#),
            format!(r#"{{"username": "cy", "pasword_hash": "{BCRYPT}"}}"#),
            r#"{"username": "dee", "password_hash": "#.to_owned(),
            format!(r#"{{"username": "a b", "password_hash": "{BCRYPT}", "email": "nope", "roles": ["Admin"]}}"#),
            "[1]".to_owned(),
            format!(r#"{{"username": "eve", "password_hash": "{BCRYPT}", "roles": null, "email": null}}"#),
        ]
        .join("\n");
        let found = problems(&input);
        assert_eq!(found.len(), 8, "{found:#?}");
        assert!(
            found[0].starts_with(r#"line 2, user "bob": password_hash: unknown password hash format"#),
            "{}",
            found[0]
        );
        assert!(found[1].starts_with(r#"line 3, user "ANN": the same username as line 1 ("ann")"#), "{}", found[1]);
        assert!(found[2].starts_with(r#"line 4, user "cy": unknown field `pasword_hash`"#), "{}", found[2]);
        assert!(found[3].starts_with("line 5: not valid JSON: EOF while parsing a value at column"), "{}", found[3]);
        assert!(found[4].starts_with(r#"line 6, user "a b": username"#), "{}", found[4]);
        assert!(found[5].starts_with(r#"line 6, user "a b": email"#), "{}", found[5]);
        assert!(found[6].starts_with(r#"line 6, user "a b": role"#), "{}", found[6]);
        assert!(found[7].starts_with("line 7: expected an object"), "{}", found[7]);
        assert!(found.iter().all(|p| !p.contains("fYBPB3")), "a hash was echoed: {found:#?}");
    }

    #[test]
    fn a_malformed_array_or_an_empty_input_is_refused_as_a_whole() {
        let found = problems(r#"[{"username": "ann",}]"#);
        assert!(found[0].starts_with("input: not a valid JSON array:"), "{found:?}");
        assert!(problems("").first().is_some_and(|p| p.starts_with("input: no accounts")));
        assert!(problems("[]").first().is_some_and(|p| p.starts_with("input: no accounts")));
        let found = problems(r#"[{"username": "ann"}]"#);
        assert_eq!(found, [r#"element 1, user "ann": missing field `password_hash`"#]);
    }

    #[test]
    fn the_summary_counts_each_kind() {
        let mut summary = Summary::default();
        summary.imported.insert(Scheme::Bcrypt, 2);
        summary.imported.insert(Scheme::Argon2id, 1);
        assert_eq!(summary.to_string(), "imported 3 users: 1 argon2id, 2 bcrypt");
        summary.skipped.push("ann".into());
        summary.dry_run = true;
        assert_eq!(summary.to_string(), "would import 3 users: 1 argon2id, 2 bcrypt\nskipped 1 existing: \"ann\"");
    }
}
