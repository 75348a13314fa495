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
);

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
