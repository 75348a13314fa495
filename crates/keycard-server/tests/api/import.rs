//! `keycard user import`: accounts from a Flask app (werkzeug, bcrypt and argon2id hashes) log
//! in over HTTP, and their hash is replaced by argon2id at the first login; bad input imports
//! nothing and says where.

use keycard_store::{Store, Username};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Hashes of [`PASSWORD`] ("correct horse battery"), made once with Werkzeug 3.1.9, bcrypt
/// 5.0.0 and argon2-cffi 25.1.0 from PyPI (Python 3.11, in a venv):
/// `werkzeug.security.generate_password_hash(PASSWORD, method=...)` with `scrypt:16384:8:1`,
/// `pbkdf2:sha256:1000` and `pbkdf2:sha512:1000`; `bcrypt.hashpw(PASSWORD, bcrypt.gensalt(rounds=4,
/// prefix=b"2b"))` (and `b"2a"`); `argon2.PasswordHasher(time_cost=1, memory_cost=1024,
/// parallelism=1).hash(PASSWORD)`.
const HASHES: [(&str, &str); 6] = [
    (
        "scrypt",
        "scrypt:16384:8:1$FdH84JD2SVt3ddie$8b5766afe8eed9be0212ffac8818000d310c30bacebd24b0e5d1f1c514ca52d7911c08d98ad310367c2c3b8812618e4d6158ce0a5716b619b3ab77b951bcb122",
    ),
    ("pbkdf2", "pbkdf2:sha256:1000$PhXNxtXJVGHmcNZa$be4912ef4cc4c5031b16baf52618be2d7803544cf3ecc00f157e34cedb027908"),
    (
        "pbkdf2-512",
        "pbkdf2:sha512:1000$MZxJkkbpHBX4qyEO$fcbeeb5fccf0cdb0f54da2d07fc259699d993edccb2ba88201d8579a9990e171ce2ef8961d2430d3098618efae34c7cb4060be708e4125f00533ab68628bf28e",
    ),
    ("bcrypt-2b", "$2b$04$fYBPB3NJ243wyedwIMMj3uw3A7BildXhSrWD.vAJBVXHAYVr3fJ/u"),
    ("bcrypt-2a", "$2a$04$Mk5TqNqWQG9i4BG5p9LQn.WydTT9AUB7NjO8B.2raoCmlX1lkvS4."),
    ("argon", "$argon2id$v=19$m=1024,t=1,p=1$261rqKK5jMAwVg7l/aYnMg$5lgq0n94GaHjeWCE8GNi4JaqdwTWrNQq8MrQbaCR9ps"),
];

fn hash_of(name: &str) -> &'static str {
    HASHES.iter().find(|(n, _)| *n == name).map(|(_, h)| *h).unwrap()
}

/// `keycard user import` on the app's database, the input from a file (`None`: stdin).
fn import(app: &TestApp, input: &str, from_stdin: bool, extra: &[&str]) -> (bool, String, String) {
    let path = app.dir.path().join("users.import");
    std::fs::write(&path, input).unwrap();
    let file = if from_stdin { "-".to_owned() } else { path.display().to_string() };
    let mut args = vec!["user", "import", &file, "--database-url", app.database_url()];
    args.extend_from_slice(extra);
    let out = run_cli(&args, if from_stdin { input } else { "" }, &[]);
    (out.status.success(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

async fn stored_hash(app: &TestApp, name: &str) -> Option<String> {
    let store = Store::connect(app.database_url()).await.unwrap();
    let found = store.find_credentials(&Username::existing(name).unwrap()).await.unwrap();
    store.close().await;
    found.map(|c| c.password_hash)
}

async fn usernames(app: &TestApp) -> Vec<String> {
    let store = Store::connect(app.database_url()).await.unwrap();
    let users = store.list_users().await.unwrap();
    store.close().await;
    users.into_iter().map(|u| u.username).collect()
}

fn record(name: &str, hash: &str) -> Value {
    json!({ "username": name, "password_hash": hash })
}

fn json_lines(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

#[tokio::test]
async fn imported_users_of_every_format_log_in_and_their_hash_becomes_argon2id() {
    let app = spawn_app().await;
    let mut records: Vec<Value> = HASHES.iter().map(|(name, hash)| record(name, hash)).collect();
    records[0]["email"] = json!("scrypt@example.com");
    records[0]["roles"] = json!(["ops", "billing"]);
    let (ok, stdout, stderr) = import(&app, &json_lines(&records), false, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.trim(),
        "imported 6 users: 1 argon2id, 1 werkzeug scrypt, 1 werkzeug pbkdf2:sha256, 1 werkzeug pbkdf2:sha512, 2 bcrypt"
    );
    assert_eq!(stored_hash(&app, "scrypt").await.as_deref(), Some(hash_of("scrypt")), "stored as given");

    for (name, hash) in HASHES {
        // A wrong password first: the same answer as for an unknown user, the hash untouched.
        assert_401(app.login(name, "correct horse batterz").await, "Bad username or password").await;
        assert_eq!(stored_hash(&app, name).await.as_deref(), Some(hash), "{name}");

        let tokens = app.login_tokens(name, PASSWORD).await;
        let after = stored_hash(&app, name).await.unwrap();
        assert!(after.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{name}: {after}");
        if name != "argon" {
            assert_ne!(after, hash, "{name}: the imported hash is still stored");
        }
        let user: Value = app.get("/user", Some(&tokens.access)).await.json().await.unwrap();
        assert_eq!(user["username"], name);

        // The argon2id hash now answers, the old password still works, a wrong one still not.
        assert_eq!(app.login(name, PASSWORD).await.status(), StatusCode::OK, "{name}");
        assert_401(app.login(name, "correct horse batterz").await, "Bad username or password").await;
        assert_eq!(stored_hash(&app, name).await.unwrap(), after, "{name}: rehashed twice");
    }
    let out = run_cli(&["audit", "--kind", "user_registered", "--json", "--database-url", app.database_url()], "", &[]);
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(events.as_array().unwrap().len(), HASHES.len(), "{events}");
    let detail = json!({ "actor": "cli", "source": "import", "hash": "bcrypt" });
    assert!(
        events.as_array().unwrap().iter().any(|e| e["username"] == "bcrypt-2a" && e["detail"] == detail),
        "{events}"
    );
    let user: Value =
        app.get("/user", Some(&app.login_tokens("scrypt", PASSWORD).await.access)).await.json().await.unwrap();
    assert_eq!(user["email"], "scrypt@example.com");
    assert_eq!(user["roles"], json!(["billing", "ops"]));
}

#[tokio::test]
async fn a_bad_record_is_reported_with_its_line_and_username_and_nothing_is_imported() {
    let app = spawn_app().await;
    let records = [
        record("ann", hash_of("bcrypt-2b")),
        record("bob", "sha1$abc$0123456789abcdef"),
        record("cy", &hash_of("scrypt").replacen("16384", "4194304", 1)),
        record("ANN", hash_of("pbkdf2")),
        json!({ "username": "dee", "password_hash": hash_of("pbkdf2"), "admin": true }),
        record("eve", hash_of("scrypt")),
    ];
    let (ok, stdout, stderr) = import(&app, &json_lines(&records), false, &[]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines[0].starts_with(r#"line 2, user "bob": password_hash: unknown password hash format"#), "{stderr}");
    assert!(
        lines[1].starts_with(r#"line 3, user "cy": password_hash: werkzeug scrypt: parameters beyond"#),
        "{stderr}"
    );
    assert!(lines[2].starts_with(r#"line 4, user "ANN": the same username as line 1"#), "{stderr}");
    assert!(lines[3].starts_with(r#"line 5, user "dee": unknown field `admin`"#), "{stderr}");
    assert!(stderr.contains("4 problems in the input, nothing imported"), "{stderr}");
    assert!(
        !stderr.contains("0123456789abcdef") && !stderr.contains("FdH84JD2SVt3ddie"),
        "a hash was echoed: {stderr}"
    );
    assert!(usernames(&app).await.is_empty(), "something was imported");
    assert_401(app.login("eve", PASSWORD).await, "Bad username or password").await;
}

#[tokio::test]
async fn an_array_is_read_from_stdin_and_bad_elements_are_counted_from_one() {
    let app = spawn_app().await;
    let good = json!([record("ann", hash_of("bcrypt-2a")), record("bob", hash_of("pbkdf2-512"))]);
    let (ok, stdout, stderr) = import(&app, &format!("\n  {good:#}"), true, &[]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "imported 2 users: 1 werkzeug pbkdf2:sha512, 1 bcrypt");
    assert_eq!(app.login("bob", PASSWORD).await.status(), StatusCode::OK);

    let bad = json!([record("cy", hash_of("pbkdf2")), { "username": "dee", "password_hash": 7 }, "eve"]);
    let (ok, _, stderr) = import(&app, &bad.to_string(), true, &[]);
    assert!(!ok);
    assert!(stderr.contains(r#"element 2, user "dee": invalid type: integer `7`, expected a string"#), "{stderr}");
    assert!(stderr.contains("element 3: expected an object"), "{stderr}");
    assert_eq!(usernames(&app).await, ["ann", "bob"]);
}

#[tokio::test]
async fn malformed_json_imports_nothing_and_says_where() {
    let app = spawn_app().await;
    let (ok, _, stderr) = import(&app, r#"[{"username": "ann", "password_hash": "x"},"#, false, &[]);
    assert!(!ok);
    assert!(stderr.contains("input: not a valid JSON array: EOF while parsing"), "{stderr}");
    let lines = format!("{}\n{{\"username\": \"bob\",\n", record("ann", hash_of("pbkdf2")));
    let (ok, _, stderr) = import(&app, &lines, false, &[]);
    assert!(!ok);
    assert!(stderr.contains("line 2: not valid JSON: EOF while parsing a value at column"), "{stderr}");
    let (ok, _, stderr) = import(&app, "  \n", false, &[]);
    assert!(!ok && stderr.contains("no accounts in the input"), "{stderr}");
    let (ok, _, stderr) = import(&app, "not json at all", false, &[]);
    assert!(!ok && stderr.contains("line 1: not valid JSON"), "{stderr}");
    assert!(usernames(&app).await.is_empty());
}

#[tokio::test]
async fn existing_accounts_are_refused_unless_skipped_and_are_never_overwritten() {
    let app = spawn_app().await;
    assert_eq!(app.register("Ann", PASSWORD).await.status(), StatusCode::CREATED);
    let before = stored_hash(&app, "ann").await.unwrap();
    let input = json_lines(&[record("ann", hash_of("pbkdf2")), record("bob", hash_of("pbkdf2"))]);
    let (ok, _, stderr) = import(&app, &input, false, &[]);
    assert!(!ok);
    assert!(stderr.contains(r#"line 1, user "ann": an account with this username already exists"#), "{stderr}");
    assert_eq!(usernames(&app).await, ["Ann"]);

    let (ok, _, stderr) = import(&app, &input, false, &["--dry-run"]);
    assert!(!ok, "a dry run must refuse what the import would refuse");
    assert!(stderr.contains(r#"line 1, user "ann": an account with this username already exists"#), "{stderr}");
    let (ok, stdout, stderr) = import(&app, &input, false, &["--skip-existing", "--dry-run"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "would import 1 user: 1 werkzeug pbkdf2:sha256\nskipped 1 existing: \"ann\"");
    assert_eq!(usernames(&app).await, ["Ann"], "a dry run wrote");

    let (ok, stdout, stderr) = import(&app, &input, false, &["--skip-existing"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "imported 1 user: 1 werkzeug pbkdf2:sha256\nskipped 1 existing: \"ann\"");
    assert_eq!(usernames(&app).await, ["Ann", "bob"]);
    assert_eq!(stored_hash(&app, "ann").await.unwrap(), before, "an existing account was overwritten");
}

/// The rehash fails (a trigger refuses the update): the login fails closed, answers no token and
/// never the hash, and the imported hash stays for the next try, which succeeds.
#[tokio::test]
async fn a_login_whose_rehash_fails_is_refused_and_succeeds_once_the_database_takes_it() {
    let app = spawn_app().await;
    let (ok, _, stderr) = import(&app, &json_lines(&[record("ann", hash_of("pbkdf2"))]), false, &[]);
    assert!(ok, "{stderr}");
    let (create, drop) = if on_postgres() {
        (
            "CREATE FUNCTION refuse_rehash() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$; \
             CREATE TRIGGER refuse_rehash BEFORE UPDATE OF password_hash ON users \
             FOR EACH ROW EXECUTE FUNCTION refuse_rehash();",
            "DROP TRIGGER refuse_rehash ON users; DROP FUNCTION refuse_rehash();",
        )
    } else {
        (
            "CREATE TRIGGER refuse_rehash BEFORE UPDATE OF password_hash ON users \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END;",
            "DROP TRIGGER refuse_rehash;",
        )
    };
    let url = app.database_url().to_owned();
    let run = |sql: &'static str| {
        let pool_url = url.clone();
        async move {
            if on_postgres() {
                let pool = sqlx::PgPool::connect(&pool_url).await.unwrap();
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            } else {
                let pool = sqlx::SqlitePool::connect(&pool_url).await.unwrap();
                sqlx::raw_sql(sql).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    };
    run(create).await;
    let response = app.login("ann", PASSWORD).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    let body = response.text().await.unwrap();
    assert!(!body.contains("access_token") && !body.contains("PhXNxtXJVGHmcNZa"), "{body}");
    assert_eq!(stored_hash(&app, "ann").await.as_deref(), Some(hash_of("pbkdf2")));

    run(drop).await;
    assert_eq!(app.login("ann", PASSWORD).await.status(), StatusCode::OK);
    assert!(stored_hash(&app, "ann").await.unwrap().starts_with("$argon2id$"));
}
