//! Store behaviour, the same on both backends: every test here runs on a fresh SQLite file and
//! on a fresh PostgreSQL schema (see [`crate::testing`]).

use uuid::Uuid;

use crate::{Email, NewSession, NewUser, Role, Roles, Rotation, Store, StoreError, UserStatus, Username};

/// Runs each named test against both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}", dir.path().join("test.db").display());
                    super::$name(crate::Store::connect(&url).await.unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(schema) = crate::testing::PgSchema::create().await else { return };
                    let store = crate::Store::connect(&schema.url).await.unwrap();
                    super::$name(store.clone()).await;
                    store.close().await;
                }
            )*
        }
    };
}

on_both_backends!(
    usernames_are_unique_case_insensitively,
    grant_role_is_idempotent_and_reports_unknown_users,
    rotation_succeeds_once_then_reports_reuse_and_revocation,
    concurrent_rotations_of_one_token_let_at_most_one_win,
    revocations_persist_until_they_expire,
    list_users_never_includes_hashes_and_groups_roles,
    revoking_a_users_sessions_can_spare_one_and_feeds_the_poll_cursor,
    disabling_ends_every_session_and_enabling_restores_the_account,
    roles_are_replaced_as_a_whole,
    audit_events_filter_by_user_kind_and_time_newest_first,
    login_failures_persist_lock_and_clear,
    live_revocations_are_loaded_page_by_page_across_the_page_boundary,
    audit_events_can_be_written_in_one_batch,
    pool_stats_show_idle_connections_within_the_maximum,
    a_bulk_insert_stores_every_user_or_none,
    a_password_hash_is_replaced_only_if_it_is_still_the_old_one,
);

async fn pool_stats_show_idle_connections_within_the_maximum(store: Store) {
    store.ping().await.unwrap();
    // sqlx hands a connection back to the pool in a task of its own: give it a moment.
    let mut stats = store.pool_stats();
    for _ in 0..100 {
        if stats.in_use == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        stats = store.pool_stats();
    }
    assert!(stats.max >= 2, "{stats:?}");
    assert_eq!(stats.in_use, 0, "nothing runs now: {stats:?}");
    assert!(stats.idle >= 1 && stats.idle <= stats.max, "the ping's connection went back: {stats:?}");
}

async fn add_user(store: &Store, name: &str, roles: &[&str]) -> i64 {
    let username = Username::parse(name).unwrap();
    let email = Email::parse("a@example.com").unwrap();
    let roles = Roles::parse(roles).unwrap();
    store
        .create_user(&NewUser {
            username: &username,
            email: Some(&email),
            password_hash: "$argon2id$fake",
            roles: &roles,
            now: 100,
        })
        .await
        .unwrap()
}

fn session(id: Uuid, user_id: i64, refresh_jti: Uuid) -> NewSession {
    NewSession { id, user_id, refresh_jti, created_at: 100, expires_at: 1_000, client_addr: None, user_agent: None }
}

async fn usernames_are_unique_case_insensitively(store: Store) {
    add_user(&store, "Alice", &["admin"]).await;
    let again = Username::parse("aLICE").unwrap();
    let err = store
        .create_user(&NewUser { username: &again, email: None, password_hash: "x", roles: &Roles::default(), now: 1 })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict));
    let found = store.find_credentials(&again).await.unwrap().unwrap();
    assert_eq!(found.user.username, "Alice");
    assert_eq!(found.user.roles, vec!["admin".to_owned()]);
    assert_eq!(found.password_hash, "$argon2id$fake");
}

async fn grant_role_is_idempotent_and_reports_unknown_users(store: Store) {
    add_user(&store, "bob", &[]).await;
    let bob = Username::parse("bob").unwrap();
    let admin = Role::parse("admin").unwrap();
    assert!(store.grant_role(&bob, &admin, 5).await.unwrap());
    assert!(!store.grant_role(&bob, &admin, 6).await.unwrap());
    assert_eq!(store.get_user(&bob).await.unwrap().unwrap().roles, vec!["admin".to_owned()]);
    let nobody = Username::parse("nobody").unwrap();
    assert!(matches!(store.grant_role(&nobody, &admin, 7).await, Err(StoreError::NotFound)));
}

async fn rotation_succeeds_once_then_reports_reuse_and_revocation(store: Store) {
    let uid = add_user(&store, "carol", &[]).await;
    let (sid, first, second) = (Uuid::now_v7(), Uuid::new_v4(), Uuid::new_v4());
    store.create_session(&session(sid, uid, first)).await.unwrap();

    assert!(
        matches!(store.rotate_refresh(sid, first, second, 200, 2_000).await.unwrap(), Rotation::Rotated(u) if u.id == uid)
    );
    assert_eq!(
        store.rotate_refresh(sid, first, Uuid::new_v4(), 201, 2_000).await.unwrap(),
        Rotation::Reused { user_id: uid }
    );
    store.revoke_session(sid, 202, "reuse", &[(sid, 3_000)]).await.unwrap();
    assert_eq!(store.rotate_refresh(sid, second, Uuid::new_v4(), 203, 2_000).await.unwrap(), Rotation::Revoked);
    assert_eq!(
        store.rotate_refresh(Uuid::now_v7(), second, Uuid::new_v4(), 203, 2_000).await.unwrap(),
        Rotation::Unknown
    );
}

async fn concurrent_rotations_of_one_token_let_at_most_one_win(store: Store) {
    let uid = add_user(&store, "dave", &[]).await;
    let (sid, jti) = (Uuid::now_v7(), Uuid::new_v4());
    store.create_session(&session(sid, uid, jti)).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.rotate_refresh(sid, jti, Uuid::new_v4(), 300, 3_000).await.unwrap() })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), Rotation::Rotated(_)) {
            wins += 1;
        }
    }
    assert_eq!(wins, 1);
}

async fn revocations_persist_until_they_expire(store: Store) {
    let uid = add_user(&store, "erin", &[]).await;
    let (sid, jti) = (Uuid::now_v7(), Uuid::new_v4());
    store.create_session(&session(sid, uid, Uuid::new_v4())).await.unwrap();
    store.revoke_session(sid, 100, "logout", &[(jti, 500), (sid, 900)]).await.unwrap();
    let mut live = store.live_revocations(400).await.unwrap();
    live.sort();
    let mut expected = vec![(jti, 500), (sid, 900)];
    expected.sort();
    assert_eq!(live, expected);
    assert_eq!(store.live_revocations(600).await.unwrap(), vec![(sid, 900)]);
    assert!(store.purge_expired(600).await.unwrap() >= 1);
    assert_eq!(store.live_revocations(0).await.unwrap(), vec![(sid, 900)]);
}

async fn list_users_never_includes_hashes_and_groups_roles(store: Store) {
    add_user(&store, "u1", &["b", "a"]).await;
    add_user(&store, "u2", &[]).await;
    let users = store.list_users().await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0].roles, vec!["a".to_owned(), "b".to_owned()]);
    let json = serde_json::to_string(&users).unwrap();
    assert!(!json.contains("argon2"));
}

async fn revoking_a_users_sessions_can_spare_one_and_feeds_the_poll_cursor(store: Store) {
    let uid = add_user(&store, "frank", &[]).await;
    let sids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    for sid in &sids {
        store.create_session(&session(*sid, uid, Uuid::new_v4())).await.unwrap();
    }
    let cursor = store.revocation_cursor().await.unwrap();
    let revoked = store.revoke_user_sessions(uid, Some(sids[0]), 200, "others").await.unwrap();
    let mut ids: Vec<Uuid> = revoked.iter().map(|(id, _)| *id).collect();
    ids.sort();
    let mut expected = sids[1..].to_vec();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(revoked.iter().all(|(_, until)| *until >= 1_000));
    assert_eq!(store.user_sessions(uid, 200).await.unwrap().iter().map(|s| s.id).collect::<Vec<_>>(), vec![sids[0]]);

    let (polled, next) = store.revocations_after(cursor).await.unwrap();
    assert_eq!(polled.len(), 2);
    assert!(next > cursor);
    assert!(store.revocations_after(next).await.unwrap().0.is_empty());
}

async fn disabling_ends_every_session_and_enabling_restores_the_account(store: Store) {
    let uid = add_user(&store, "gina", &[]).await;
    let sid = Uuid::now_v7();
    store.create_session(&session(sid, uid, Uuid::new_v4())).await.unwrap();
    let gina = Username::parse("GINA").unwrap();
    let (user, revoked) = store.set_status(&gina, UserStatus::Disabled, 300).await.unwrap();
    assert_eq!(user.status, UserStatus::Disabled);
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].0, sid);
    let (user, revoked) = store.set_status(&gina, UserStatus::Active, 301).await.unwrap();
    assert_eq!((user.status, revoked.len()), (UserStatus::Active, 0));
    let nobody = Username::parse("nobody").unwrap();
    assert!(matches!(store.set_status(&nobody, UserStatus::Disabled, 1).await, Err(StoreError::NotFound)));
}

async fn roles_are_replaced_as_a_whole(store: Store) {
    add_user(&store, "hal", &["a", "b"]).await;
    let hal = Username::parse("hal").unwrap();
    let user = store.set_roles(&hal, &Roles::parse(["c"]).unwrap(), 5).await.unwrap();
    assert_eq!(user.roles, vec!["c".to_owned()]);
}

async fn audit_events_filter_by_user_kind_and_time_newest_first(store: Store) {
    use crate::{AuditEvent, AuditFilter, AuditKind};
    for (at, kind, who) in [
        (10, AuditKind::LoginFailed, "ivy"),
        (20, AuditKind::LoginSucceeded, "Ivy"),
        (30, AuditKind::LoginFailed, "joe"),
    ] {
        let event = AuditEvent {
            username: Some(who.into()),
            detail: Some(serde_json::json!({"n": at})),
            ..AuditEvent::new(kind, at)
        };
        store.record_audit(&event).await.unwrap();
    }
    let ivy =
        store.audit_events(&AuditFilter { username: Some("IVY".into()), ..AuditFilter::default() }).await.unwrap();
    assert_eq!(ivy.iter().map(|e| e.at).collect::<Vec<_>>(), vec![20, 10]);
    let failed = store
        .audit_events(&AuditFilter { kind: Some(AuditKind::LoginFailed), since: Some(15), ..AuditFilter::default() })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].username.as_deref(), Some("joe"));
    assert_eq!(failed[0].detail, Some(serde_json::json!({"n": 30})));
    let one = store.audit_events(&AuditFilter { limit: Some(1), ..AuditFilter::default() }).await.unwrap();
    assert_eq!(one[0].at, 30);
}

async fn login_failures_persist_lock_and_clear(store: Store) {
    let policy = crate::ThrottlePolicy::default();
    for i in 0..4 {
        let state = store.record_login_failure("kim", &policy, 100 + i).await.unwrap();
        assert_eq!(state.locked_until, 0);
    }
    let state = store.record_login_failure("kim", &policy, 104).await.unwrap();
    assert_eq!(state.consecutive, 5);
    assert_eq!(store.login_locked_until("kim", 105).await.unwrap(), Some(134));
    assert_eq!(store.login_locked_until("kim", 134).await.unwrap(), None);
    assert_eq!(store.login_locked_until("other", 105).await.unwrap(), None);
    store.clear_login_failures("kim").await.unwrap();
    assert_eq!(store.login_locked_until("kim", 105).await.unwrap(), None);
}

async fn live_revocations_are_loaded_page_by_page_across_the_page_boundary(store: Store) {
    let uid = add_user(&store, "pat", &[]).await;
    let sid = Uuid::now_v7();
    store.create_session(&session(sid, uid, Uuid::new_v4())).await.unwrap();
    let mut many: Vec<(Uuid, i64)> = (0..10_050).map(|i| (Uuid::new_v4(), 1_000 + i)).collect();
    many.push((Uuid::new_v4(), 10)); // already expired at `now`
    store.revoke_session(sid, 100, "bulk", &many).await.unwrap();
    let mut pages = Vec::new();
    let total = store.load_live_revocations(500, |page| pages.push(page.len())).await.unwrap();
    assert_eq!(total, 10_050);
    assert_eq!(pages, vec![10_000, 50]);
    let mut loaded = store.live_revocations(500).await.unwrap();
    loaded.sort();
    many.pop();
    many.sort();
    assert_eq!(loaded, many);
}

async fn audit_events_can_be_written_in_one_batch(store: Store) {
    use crate::{AuditEvent, AuditFilter, AuditKind};
    let events: Vec<AuditEvent> = (0..600)
        .map(|i| AuditEvent { username: Some(format!("u{i}")), ..AuditEvent::new(AuditKind::Refresh, i) })
        .collect();
    store.record_audit_batch(&events).await.unwrap();
    let read = store.audit_events(&AuditFilter { limit: Some(1000), ..AuditFilter::default() }).await.unwrap();
    assert_eq!(read.len(), 600);
    assert_eq!(read[0].username.as_deref(), Some("u599"));
}

/// Issue 11: a COMMIT that failed on a full disk must not leave its connection in the pool
/// inside an open transaction (every later write on it acknowledged and never committed).
/// SQLite on a 2 MiB tmpfs (root only; skipped otherwise, failing with `CI=1`).
#[tokio::test]
async fn sqlite_on_a_full_disk_every_acknowledged_write_is_stored_and_survives_a_restart() {
    use sqlx::Connection;

    let Some(disk) = crate::testing::TinyDisk::mount(2 << 20) else { return };
    let path = disk.path().join("keycard.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url).await.unwrap();
    let owner = add_user(&store, "owner", &[]).await;
    let sessions: Vec<Uuid> = (0..60).map(|_| Uuid::now_v7()).collect();
    for sid in &sessions {
        store.create_session(&session(*sid, owner, Uuid::new_v4())).await.unwrap();
    }
    // Rows as big as a real registration's (an Argon2id PHC string is ~100 bytes).
    let hash = format!("$argon2id$v=19$m=19456,t=2,p=1${}", "x".repeat(86));
    let mut users = Vec::new();
    let mut revoked = Vec::new();
    let mut refused = 0;
    let write = async |store: &Store, i: usize, users: &mut Vec<String>, revoked: &mut Vec<Uuid>| {
        let name = format!("user{i}");
        let username = Username::parse(&name).unwrap();
        let new =
            NewUser { username: &username, email: None, password_hash: &hash, roles: &Roles::default(), now: 100 };
        let mut refusals = 0;
        match store.create_user(&new).await {
            Ok(_) => users.push(name),
            Err(e) if e.is_unavailable() => refusals += 1,
            Err(e) => panic!("registration {i}: {e:?} is not a refusal to write"),
        }
        if let Some(sid) = sessions.get(i) {
            match store.revoke_session(*sid, 200, "logout", &[(*sid, 5_000)]).await {
                Ok(()) => revoked.push(*sid),
                Err(e) if e.is_unavailable() => refusals += 1,
                Err(e) => panic!("logout {i}: {e:?} is not a refusal to write"),
            }
        }
        refusals
    };
    let stored = async |users: &[String], revoked: &[Uuid]| {
        // An independent, read-only connection: what is really committed.
        let mut conn = sqlx::SqliteConnection::connect(&format!("{url}?mode=ro")).await.unwrap();
        for name in users {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE username = ?1")
                .bind(name)
                .fetch_optional(&mut conn)
                .await
                .unwrap();
            assert!(found.is_some(), "{name} was acknowledged but is not stored");
        }
        for sid in revoked {
            let found: Option<i64> = sqlx::query_scalar("SELECT expires_at FROM revocations WHERE id = ?1")
                .bind(sid.to_string())
                .fetch_optional(&mut conn)
                .await
                .unwrap();
            assert!(found.is_some(), "revocation {sid} was acknowledged but is not stored");
        }
        conn.close().await.unwrap();
    };

    disk.fill();
    for i in 0..40 {
        refused += write(&store, i, &mut users, &mut revoked).await;
    }
    assert!(refused > 0, "the full disk refused nothing: the test did not fill it");
    stored(&users, &revoked).await;

    disk.free();
    for i in 40..60 {
        assert_eq!(write(&store, i, &mut users, &mut revoked).await, 0, "write {i} refused after space returned");
    }
    stored(&users, &revoked).await;

    store.close().await;
    let store = Store::connect(&url).await.unwrap();
    for name in &users {
        assert!(store.user_exists(&Username::parse(name).unwrap()).await.unwrap(), "{name} lost in the restart");
    }
    let live: Vec<Uuid> = store.live_revocations(300).await.unwrap().into_iter().map(|(id, _)| id).collect();
    for sid in &revoked {
        assert!(live.contains(sid), "revocation {sid} lost in the restart");
    }
    store.close().await;
}

/// Issue 11: role bounds and the last active admin, on both backends.
mod admins_and_roles {
    use super::*;

    on_both_backends!(
        a_grant_beyond_the_role_bound_is_refused,
        the_last_active_admin_cannot_lose_the_role_or_be_disabled,
        two_admins_removing_each_other_at_once_leave_one,
    );

    async fn a_grant_beyond_the_role_bound_is_refused(store: Store) {
        let names: Vec<String> = (0..Roles::MAX).map(|i| format!("r{i}")).collect();
        add_user(&store, "rita", &names.iter().map(String::as_str).collect::<Vec<_>>()).await;
        let rita = Username::parse("rita").unwrap();
        let extra = Role::parse("extra").unwrap();
        assert!(matches!(store.grant_role(&rita, &extra, 5).await, Err(StoreError::TooManyRoles)));
        assert_eq!(store.get_user(&rita).await.unwrap().unwrap().roles.len(), Roles::MAX);
        // Granting one it already has is still fine.
        assert!(!store.grant_role(&rita, &Role::parse("r0").unwrap(), 6).await.unwrap());
    }

    async fn the_last_active_admin_cannot_lose_the_role_or_be_disabled(store: Store) {
        add_user(&store, "root", &["admin", "ops"]).await;
        add_user(&store, "eve", &["ops"]).await;
        let root = Username::parse("root").unwrap();
        let eve = Username::parse("eve").unwrap();
        let ops = Roles::parse(["ops"]).unwrap();
        assert!(matches!(store.set_roles(&root, &ops, 5).await, Err(StoreError::LastAdmin)));
        assert!(matches!(store.set_status(&root, UserStatus::Disabled, 5).await, Err(StoreError::LastAdmin)));
        let root_now = store.get_user(&root).await.unwrap().unwrap();
        assert_eq!((root_now.status, root_now.roles.clone()), (UserStatus::Active, vec!["admin".into(), "ops".into()]));
        // Others are unaffected, and keeping the role is fine.
        store.set_roles(&eve, &Roles::default(), 6).await.unwrap();
        store.set_status(&eve, UserStatus::Disabled, 6).await.unwrap();
        store.set_roles(&root, &Roles::parse(["admin"]).unwrap(), 7).await.unwrap();
        // A disabled admin does not count; an active second admin does.
        store.grant_role(&eve, &Role::parse("admin").unwrap(), 8).await.unwrap();
        assert!(matches!(store.set_roles(&root, &ops, 9).await, Err(StoreError::LastAdmin)));
        store.set_status(&eve, UserStatus::Active, 10).await.unwrap();
        store.set_roles(&root, &ops, 11).await.unwrap();
        assert!(matches!(store.set_status(&eve, UserStatus::Disabled, 12).await, Err(StoreError::LastAdmin)));
    }

    async fn two_admins_removing_each_other_at_once_leave_one(store: Store) {
        let none = Roles::default();
        let mut survivor: Option<Username> = None;
        for round in 0..10 {
            let (a, b) = (format!("a{round}"), format!("b{round}"));
            add_user(&store, &a, &["admin"]).await;
            add_user(&store, &b, &["admin"]).await;
            let (ua, ub) = (Username::parse(&a).unwrap(), Username::parse(&b).unwrap());
            // The last round's survivor steps down: exactly two active admins remain.
            if let Some(previous) = survivor.take() {
                store.set_roles(&previous, &none, 4).await.unwrap();
            }
            // One removes the other's role while the other is being disabled.
            let (x, y) = tokio::join!(store.set_roles(&ub, &none, 5), store.set_status(&ua, UserStatus::Disabled, 5));
            assert!(x.is_ok() != y.is_ok(), "round {round}: exactly one must win: {x:?} {y:?}");
            for e in [x.as_ref().err(), y.as_ref().err()].into_iter().flatten() {
                assert!(matches!(e, StoreError::LastAdmin), "{e:?}");
            }
            let users = store.list_users().await.unwrap();
            let active_admins: Vec<&str> = users
                .iter()
                .filter(|u| u.status == UserStatus::Active && u.roles.iter().any(|r| r == "admin"))
                .map(|u| u.username.as_str())
                .collect();
            assert_eq!(active_admins.len(), 1, "round {round}: {active_admins:?}");
            survivor = Some(Username::parse(active_admins[0]).unwrap());
        }
    }
}

/// Issue 13: asymmetric signing keys, on both backends.
mod signing_keys {
    use sqlx::Connection;

    use crate::{KeyState, NewSigningKey, SigningKeysVersion, Store, StoreError, StoredSigningKey};

    /// Runs each named test against both backends, handing it the database URL (each test
    /// opens as many stores on it as it wants: two stores are two servers).
    macro_rules! on_both_urls {
        ($($name:ident),* $(,)?) => {
            mod sqlite {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let dir = tempfile::tempdir().unwrap();
                        super::$name(format!("sqlite://{}", dir.path().join("test.db").display())).await;
                    }
                )*
            }
            mod postgres {
                $(
                    #[tokio::test]
                    async fn $name() {
                        let Some(schema) = crate::testing::PgSchema::create().await else { return };
                        super::$name(schema.url.clone()).await;
                    }
                )*
            }
        };
    }

    on_both_urls!(
        the_first_key_becomes_active_and_a_rotation_retires_it_in_one_step,
        servers_starting_at_once_end_with_exactly_one_active_key,
        concurrent_rotations_all_succeed_and_leave_one_active_key,
        each_algorithm_has_its_own_active_key,
        only_keys_retired_before_the_cutoff_are_deleted,
        a_rotation_whose_insert_fails_leaves_the_previous_key_active,
        a_store_that_is_closed_answers_errors_not_keys,
        a_scheduled_rotation_found_due_by_several_servers_happens_once,
    );

    async fn a_scheduled_rotation_found_due_by_several_servers_happens_once(url: String) {
        let (a, b) = (Store::connect(&url).await.unwrap(), Store::connect(&url).await.unwrap());
        a.insert_signing_key_if_none_active(&key("old", "ES256", b"old", 100)).await.unwrap();
        let rotations: Vec<_> = (0..6)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let kid = format!("new{i}");
                    store.rotate_signing_key_if_active(&key(&kid, "ES256", b"new", 200), "old").await.unwrap()
                })
            })
            .collect();
        let mut done = 0;
        for rotation in rotations {
            done += usize::from(rotation.await.unwrap());
        }
        assert_eq!(done, 1, "exactly one server rotates");
        let keys = a.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 2, "{keys:?}");
        assert_eq!(keys.iter().filter(|k| k.state == KeyState::Active).count(), 1);
        a.close().await;
        b.close().await;
    }

    fn key<'a>(kid: &'a str, algorithm: &'a str, material: &'a [u8], now: i64) -> NewSigningKey<'a> {
        NewSigningKey { kid, algorithm, private_key: material, sealed: false, now }
    }

    fn states(keys: &[StoredSigningKey]) -> Vec<(&str, KeyState)> {
        keys.iter().map(|k| (k.kid.as_str(), k.state)).collect()
    }

    async fn the_first_key_becomes_active_and_a_rotation_retires_it_in_one_step(url: String) {
        let store = Store::connect(&url).await.unwrap();
        assert_eq!(store.signing_keys_version().await.unwrap(), SigningKeysVersion::default());
        assert!(store.signing_keys().await.unwrap().is_empty());

        let first = store
            .insert_signing_key_if_none_active(&NewSigningKey { sealed: true, ..key("k1", "ES256", b"one", 100) })
            .await
            .unwrap();
        assert_eq!((first.kid.as_str(), first.state, first.activated_at), ("k1", KeyState::Active, Some(100)));
        assert_eq!((first.private_key.as_slice(), first.sealed, first.created_at), (&b"one"[..], true, 100));
        let v1 = store.signing_keys_version().await.unwrap();
        assert_eq!(v1.count, 1);

        let retired = store.rotate_signing_key(&key("k2", "ES256", b"two", 200)).await.unwrap();
        assert_eq!(retired, vec!["k1".to_owned()]);
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(states(&keys), vec![("k1", KeyState::Retired), ("k2", KeyState::Active)]);
        assert_eq!((keys[0].retired_at, keys[0].activated_at), (Some(200), Some(100)));
        assert_eq!((keys[1].retired_at, keys[1].activated_at, keys[1].sealed), (None, Some(200), false));
        let v2 = store.signing_keys_version().await.unwrap();
        assert_ne!(v1, v2, "a rotation must change the polled version");
        assert_eq!(v2, store.signing_keys_version().await.unwrap(), "the version is stable without changes");

        // With an active key, a later first start keeps it and gets it back.
        let kept = store.insert_signing_key_if_none_active(&key("k3", "ES256", b"three", 300)).await.unwrap();
        assert_eq!(kept.kid, "k2");
        assert_eq!(store.signing_keys().await.unwrap().len(), 2);
        assert_eq!(v2, store.signing_keys_version().await.unwrap());

        // The same kid twice is a conflict, and changes nothing.
        assert!(matches!(
            store.rotate_signing_key(&key("k2", "ES256", b"again", 400)).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(
            states(&store.signing_keys().await.unwrap()),
            vec![("k1", KeyState::Retired), ("k2", KeyState::Active)]
        );
        store.close().await;
    }

    async fn servers_starting_at_once_end_with_exactly_one_active_key(url: String) {
        // Four "servers" (stores of their own, each with its pool), each starting twice at once.
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(Store::connect(&url).await.unwrap());
        }
        let starts: Vec<_> = (0..8)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                tokio::spawn(async move {
                    let kid = format!("k{i}");
                    let material = vec![u8::try_from(i).unwrap(); 32];
                    store.insert_signing_key_if_none_active(&key(&kid, "ES256", &material, 100)).await.unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for start in starts {
            winners.push(start.await.unwrap());
        }
        let keys = stores[0].signing_keys().await.unwrap();
        assert_eq!(keys.len(), 1, "{keys:?}");
        assert_eq!(keys[0].state, KeyState::Active);
        for winner in &winners {
            assert_eq!(winner, &keys[0], "every server must get the key that won, material included");
        }
        for store in stores {
            store.close().await;
        }
    }

    async fn concurrent_rotations_all_succeed_and_leave_one_active_key(url: String) {
        let (a, b) = (Store::connect(&url).await.unwrap(), Store::connect(&url).await.unwrap());
        a.insert_signing_key_if_none_active(&key("k0", "EdDSA", b"zero", 100)).await.unwrap();
        let rotations: Vec<_> = (1..=6)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    let kid = format!("k{i}");
                    store.rotate_signing_key(&key(&kid, "EdDSA", b"material", 200)).await
                })
            })
            .collect();
        let mut retired = Vec::new();
        for rotation in rotations {
            retired.extend(rotation.await.unwrap().unwrap());
        }
        let keys = a.signing_keys().await.unwrap();
        assert_eq!(keys.len(), 7);
        let active: Vec<&str> = keys.iter().filter(|k| k.state == KeyState::Active).map(|k| k.kid.as_str()).collect();
        assert_eq!(active.len(), 1, "{keys:?}");
        // Each rotation retired exactly the key active before it: six retirements, no kid twice.
        retired.sort();
        retired.dedup();
        assert_eq!(retired.len(), 6, "{retired:?}");
        assert!(!retired.iter().any(|kid| kid == active[0]));
        a.close().await;
        b.close().await;
    }

    async fn each_algorithm_has_its_own_active_key(url: String) {
        let store = Store::connect(&url).await.unwrap();
        store.insert_signing_key_if_none_active(&key("ec", "ES256", b"ec", 100)).await.unwrap();
        let ed = store.insert_signing_key_if_none_active(&key("ed", "EdDSA", b"ed", 100)).await.unwrap();
        assert_eq!(ed.kid, "ed");
        assert_eq!(store.rotate_signing_key(&key("rsa", "RS256", b"rsa", 200)).await.unwrap(), Vec::<String>::new());
        assert_eq!(store.rotate_signing_key(&key("ec2", "ES256", b"ec2", 300)).await.unwrap(), vec!["ec".to_owned()]);
        let mut active: Vec<(String, String)> = store
            .signing_keys()
            .await
            .unwrap()
            .into_iter()
            .filter(|k| k.state == KeyState::Active)
            .map(|k| (k.algorithm.clone(), k.kid.clone()))
            .collect();
        active.sort();
        let expected = [("ES256", "ec2"), ("EdDSA", "ed"), ("RS256", "rsa")];
        assert_eq!(active, expected.map(|(a, k)| (a.to_owned(), k.to_owned())));
        store.close().await;
    }

    async fn only_keys_retired_before_the_cutoff_are_deleted(url: String) {
        let store = Store::connect(&url).await.unwrap();
        store.insert_signing_key_if_none_active(&key("k1", "ES256", b"1", 100)).await.unwrap();
        store.rotate_signing_key(&key("k2", "ES256", b"2", 200)).await.unwrap();
        store.rotate_signing_key(&key("k3", "ES256", b"3", 300)).await.unwrap();
        let before = store.signing_keys_version().await.unwrap();
        // k1 retired at 200, k2 at 300: a cutoff of 300 deletes k1 only (strictly before).
        assert_eq!(store.delete_retired_signing_keys(300).await.unwrap(), 1);
        assert_eq!(
            states(&store.signing_keys().await.unwrap()),
            vec![("k2", KeyState::Retired), ("k3", KeyState::Active)]
        );
        assert_ne!(before, store.signing_keys_version().await.unwrap(), "a deletion must change the polled version");
        // The active key is never deleted, however late the cutoff.
        assert_eq!(store.delete_retired_signing_keys(i64::MAX).await.unwrap(), 1);
        assert_eq!(states(&store.signing_keys().await.unwrap()), vec![("k3", KeyState::Active)]);
        store.close().await;
    }

    /// Failure injection: a trigger makes every insert into `signing_keys` fail after the
    /// rotation has retired the active key; the transaction must take the retirement back.
    async fn a_rotation_whose_insert_fails_leaves_the_previous_key_active(url: String) {
        let store = Store::connect(&url).await.unwrap();
        store.insert_signing_key_if_none_active(&key("k1", "ES256", b"1", 100)).await.unwrap();
        let trigger = if url.starts_with("sqlite") {
            "CREATE TRIGGER fail_key_insert BEFORE INSERT ON signing_keys
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END;"
        } else {
            "CREATE FUNCTION fail_key_insert() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$;
             CREATE TRIGGER fail_key_insert BEFORE INSERT ON signing_keys
                 FOR EACH ROW EXECUTE FUNCTION fail_key_insert();"
        };
        let drop = if url.starts_with("sqlite") {
            "DROP TRIGGER fail_key_insert"
        } else {
            "DROP TRIGGER fail_key_insert ON signing_keys"
        };
        raw(&url, trigger).await;

        let err = store.rotate_signing_key(&key("k2", "ES256", b"2", 200)).await.unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        let err = store.insert_signing_key_if_none_active(&key("k9", "EdDSA", b"9", 200)).await.unwrap_err();
        assert!(matches!(err, StoreError::Database(_)), "{err:?}");
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(states(&keys), vec![("k1", KeyState::Active)]);
        assert_eq!(keys[0].retired_at, None, "the failed rotation's retirement was committed");

        raw(&url, drop).await;
        store.rotate_signing_key(&key("k2", "ES256", b"2", 300)).await.unwrap();
        assert_eq!(
            states(&store.signing_keys().await.unwrap()),
            vec![("k1", KeyState::Retired), ("k2", KeyState::Active)]
        );
        store.close().await;
    }

    async fn a_store_that_is_closed_answers_errors_not_keys(url: String) {
        let store = Store::connect(&url).await.unwrap();
        store.insert_signing_key_if_none_active(&key("k1", "ES256", b"1", 100)).await.unwrap();
        store.close().await;
        assert!(store.signing_keys_version().await.unwrap_err().is_unavailable());
        assert!(store.signing_keys().await.unwrap_err().is_unavailable());
        assert!(store.rotate_signing_key(&key("k2", "ES256", b"2", 200)).await.unwrap_err().is_unavailable());
    }

    /// Runs `sql` on a connection of its own.
    async fn raw(url: &str, sql: &'static str) {
        if url.starts_with("sqlite") {
            let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }

    #[test]
    fn debug_never_shows_key_material() {
        let material = b"-----SECRET-MATERIAL-----".to_vec();
        let stored = StoredSigningKey {
            kid: "kid1".into(),
            algorithm: "ES256".into(),
            private_key: material.clone(),
            sealed: false,
            created_at: 1,
            activated_at: Some(1),
            retired_at: None,
            state: KeyState::Active,
        };
        let new = key("kid1", "ES256", &material, 1);
        for shown in [format!("{stored:?}"), format!("{stored:#?}"), format!("{new:?}")] {
            assert!(shown.contains("kid1") && shown.contains("redacted"), "{shown}");
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(!shown.contains(&format!("{:?}", material.as_slice())), "{shown}");
            assert!(!shown.contains("45, 45"), "{shown}");
        }
        for state in [KeyState::Active, KeyState::Next, KeyState::Retired] {
            assert_eq!(state.as_str().parse::<KeyState>().unwrap(), state);
        }
        assert!("ACTIVE".parse::<KeyState>().is_err());
    }
}

#[tokio::test]
async fn the_sqlite_database_and_its_wal_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let fresh = dir.path().join("fresh.db");
    let store = Store::connect(&format!("sqlite://{}", fresh.display())).await.unwrap();
    add_user(&store, "alice", &[]).await;
    assert_eq!(mode(&fresh), 0o600);
    assert_eq!(mode(&dir.path().join("fresh.db-wal")), 0o600);
    store.close().await;

    // A database created by hand with a permissive mode is tightened when keycard opens it.
    let old = dir.path().join("old.db");
    std::fs::write(&old, b"").unwrap();
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::connect(&format!("sqlite://{}", old.display())).await.unwrap();
    assert_eq!(mode(&old), 0o600);
    store.close().await;
}

async fn a_bulk_insert_stores_every_user_or_none(store: Store) {
    add_user(&store, "Taken", &[]).await;
    let names: Vec<Username> = ["ann", "bob", "TAKEN", "cy"].iter().map(|n| Username::parse(n).unwrap()).collect();
    let roles = Roles::parse(["ops"]).unwrap();
    let new = |u| NewUser { username: u, email: None, password_hash: "scrypt:x", roles: &roles, now: 5 };
    let users: Vec<NewUser<'_>> = names.iter().map(new).collect();
    assert!(matches!(store.create_users(&users).await, Err(StoreError::Conflict)));
    assert_eq!(store.list_users().await.unwrap().len(), 1, "a failed bulk insert left users behind");

    let users: Vec<NewUser<'_>> = names.iter().filter(|u| u.key() != "taken").map(new).collect();
    assert_eq!(store.create_users(&users).await.unwrap(), 3);
    let listed = store.list_users().await.unwrap();
    assert_eq!(listed.iter().map(|u| u.username.as_str()).collect::<Vec<_>>(), ["Taken", "ann", "bob", "cy"]);
    assert_eq!(listed[1].roles, vec!["ops".to_owned()]);
    let found = store.find_credentials(&names[1]).await.unwrap().unwrap();
    assert_eq!(found.password_hash, "scrypt:x");
    assert_eq!(store.create_users(&[]).await.unwrap(), 0);
}

async fn a_password_hash_is_replaced_only_if_it_is_still_the_old_one(store: Store) {
    let id = add_user(&store, "ann", &[]).await;
    let ann = Username::parse("ann").unwrap();
    assert!(!store.replace_password_hash(id, "not the stored one", "$argon2id$new", 7).await.unwrap());
    assert_eq!(store.find_credentials(&ann).await.unwrap().unwrap().password_hash, "$argon2id$fake");
    assert!(store.replace_password_hash(id, "$argon2id$fake", "$argon2id$new", 7).await.unwrap());
    assert_eq!(store.find_credentials(&ann).await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(!store.replace_password_hash(id, "$argon2id$fake", "$argon2id$other", 8).await.unwrap());
}

#[tokio::test]
async fn inspect_reads_the_migration_state_without_creating_or_migrating() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("new.db").display());
    let timeout = std::time::Duration::from_secs(5);
    let missing = Store::inspect(&url, timeout).await.unwrap();
    assert!(!missing.exists && missing.applied == 0 && missing.pending > 0, "{missing:?}");
    assert!(!dir.path().join("new.db").exists(), "inspect created the database");
    Store::connect(&url).await.unwrap().close().await;
    let migrated = Store::inspect(&url, timeout).await.unwrap();
    assert_eq!((migrated.exists, migrated.pending, migrated.applied), (true, 0, missing.pending), "{migrated:?}");
    assert!(migrated.unknown.is_empty() && migrated.failed.is_empty());
    assert!(matches!(Store::inspect("mysql://x/y", timeout).await, Err(StoreError::UnsupportedUrl)));

    if let Some(schema) = crate::testing::PgSchema::create().await {
        let fresh = Store::inspect(&schema.url, timeout).await.unwrap();
        assert!(fresh.exists && fresh.applied == 0 && fresh.pending > 0, "{fresh:?}");
        Store::connect(&schema.url).await.unwrap().close().await;
        let migrated = Store::inspect(&schema.url, timeout).await.unwrap();
        assert_eq!((migrated.pending, migrated.applied), (0, fresh.pending), "{migrated:?}");
    }
}

#[test]
fn migration_status_sorts_versions_into_applied_pending_unknown_and_failed() {
    let status = crate::model::migration_status(&[1, 2, 3], &[(1, true), (2, false), (9, true)]);
    assert_eq!((status.applied, status.pending, status.unknown, status.failed), (1, 2, vec![9], vec![2]));
}
