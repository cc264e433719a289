//! Store tests, run against SQLite and, when `TESSERA_TEST_POSTGRES_URL` is set, PostgreSQL.
//! CI sets it, and with `CI=true` a missing PostgreSQL is a failure, not a skip.

mod common;

use chrono::{Duration, Utc};
use common::backends;
use tessera_store::*;
use uuid::Uuid;

fn new_account(name: &str) -> NewAccount {
    NewAccount {
        id: Uuid::now_v7(),
        name: name.into(),
        created_at: Utc::now(),
    }
}

fn new_user(account_id: Uuid, email: &str, role: &str) -> NewUser {
    NewUser {
        id: Uuid::now_v7(),
        account_id,
        email: email.into(),
        password_hash: Some("hash".into()),
        role: role.into(),
        state: "active".into(),
        invite_token_digest: None,
        created_at: Utc::now(),
    }
}

fn new_key(account_id: Uuid, user_id: Option<Uuid>, sa: Option<Uuid>, name: &str) -> NewApiKey {
    NewApiKey {
        id: Uuid::now_v7(),
        account_id,
        name: name.into(),
        user_id,
        service_account_id: sa,
        secret_digest: "d".repeat(64),
        expires_at: Utc::now() + Duration::days(30),
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn accounts_are_idempotent_and_names_unique() {
    for b in backends().await {
        let s = &b.store;
        let new = new_account("acme");
        let a1 = s.create_account(new.clone()).await.unwrap();
        let a2 = s.create_account(new.clone()).await.unwrap();
        assert_eq!(a1, a2, "{}: retried create returns the first row", b.name);
        assert_eq!(a1.max_namespaces, 10, "{}: default namespace quota", b.name);
        let dup = s.create_account(new_account("acme")).await.unwrap_err();
        assert!(
            matches!(dup, StoreError::Conflict(_)),
            "{}: {dup:?}",
            b.name
        );
        assert_eq!(s.account_by_name("acme").await.unwrap().unwrap().id, a1.id);
        let page = s.list_accounts(None, None).await.unwrap();
        assert_eq!(page.items.len(), 1, "{}", b.name);
    }
}

#[tokio::test]
async fn users_emails_unique_and_last_owner_protected() {
    for b in backends().await {
        let s = &b.store;
        let acc = s.create_account(new_account("acme")).await.unwrap();
        let owner = s
            .create_user(new_user(acc.id, "o@acme.io", "owner"))
            .await
            .unwrap();
        let dup = s
            .create_user(new_user(acc.id, "o@acme.io", "admin"))
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{}", b.name);

        let demote = s
            .set_user_role(acc.id, owner.id, "admin")
            .await
            .unwrap_err();
        assert!(
            matches!(demote, StoreError::Conflict(_)),
            "{}: last owner kept",
            b.name
        );
        let remove = s
            .remove_user(acc.id, owner.id, Utc::now())
            .await
            .unwrap_err();
        assert!(matches!(remove, StoreError::Conflict(_)), "{}", b.name);

        let dev = s
            .create_user(new_user(acc.id, "d@acme.io", "developer"))
            .await
            .unwrap();
        let key = s
            .create_api_key(new_key(acc.id, Some(dev.id), None, "k"))
            .await
            .unwrap();
        s.create_session(
            "s".repeat(64),
            dev.id,
            acc.id,
            Utc::now() + Duration::hours(1),
        )
        .await
        .unwrap();
        s.remove_user(acc.id, dev.id, Utc::now()).await.unwrap();
        assert!(s.user_by_id(dev.id).await.unwrap().is_none());
        assert!(
            s.api_key_by_id(key.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some(),
            "{}",
            b.name
        );
        assert!(
            s.session(&"s".repeat(64), Utc::now())
                .await
                .unwrap()
                .is_none()
        );

        // Another account cannot see or touch this account's users.
        let other = s.create_account(new_account("other")).await.unwrap();
        assert!(matches!(
            s.user(other.id, owner.id).await.unwrap_err(),
            StoreError::NotFound(_)
        ));
        assert_eq!(s.count_owners(acc.id).await.unwrap(), 1);
    }
}

#[tokio::test]
async fn invitations_activate_once() {
    for b in backends().await {
        let s = &b.store;
        let acc = s.create_account(new_account("acme")).await.unwrap();
        let mut u = new_user(acc.id, "i@acme.io", "developer");
        u.password_hash = None;
        u.state = "invited".into();
        u.invite_token_digest = Some("x".repeat(64));
        let u = s.create_user(u).await.unwrap();
        let found = s
            .user_by_invite(&"x".repeat(64), Utc::now())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.id, u.id);
        // Past its seven days, an invitation is no more.
        let later = Utc::now() + INVITATION_TTL + Duration::minutes(1);
        assert!(
            s.user_by_invite(&"x".repeat(64), later)
                .await
                .unwrap()
                .is_none()
        );
        let active = s.activate_user(u.id, "h".into()).await.unwrap();
        assert_eq!(active.state, "active", "{}", b.name);
        assert!(
            s.user_by_invite(&"x".repeat(64), Utc::now())
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn api_keys_revoke_and_list() {
    for b in backends().await {
        let s = &b.store;
        let acc = s.create_account(new_account("acme")).await.unwrap();
        let u = s
            .create_user(new_user(acc.id, "o@acme.io", "owner"))
            .await
            .unwrap();
        let sa = s
            .create_service_account(
                Uuid::now_v7(),
                acc.id,
                "ci".into(),
                "developer".into(),
                serde_json::json!({}),
            )
            .await
            .unwrap();
        let dup = s
            .create_service_account(
                Uuid::now_v7(),
                acc.id,
                "ci".into(),
                "developer".into(),
                serde_json::json!({}),
            )
            .await
            .unwrap_err();
        assert!(matches!(dup, StoreError::Conflict(_)), "{}", b.name);

        let k1 = s
            .create_api_key(new_key(acc.id, Some(u.id), None, "mine"))
            .await
            .unwrap();
        let k2 = s
            .create_api_key(new_key(acc.id, None, Some(sa.id), "ci"))
            .await
            .unwrap();
        assert!(
            s.active_api_key_named(acc.id, "mine", Utc::now())
                .await
                .unwrap()
        );
        assert_eq!(
            s.list_api_keys(acc.id, None, None, None)
                .await
                .unwrap()
                .items
                .len(),
            2
        );
        let own = s
            .list_api_keys(acc.id, Some(u.id), None, None)
            .await
            .unwrap();
        assert_eq!(
            own.items.iter().map(|k| k.id).collect::<Vec<_>>(),
            vec![k1.id]
        );

        let revoked = s.revoke_api_key(acc.id, k1.id, Utc::now()).await.unwrap();
        let first = revoked.revoked_at.unwrap();
        let again = s
            .revoke_api_key(acc.id, k1.id, Utc::now() + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(
            again.revoked_at.unwrap(),
            first,
            "{}: first revocation kept",
            b.name
        );
        assert!(
            !s.active_api_key_named(acc.id, "mine", Utc::now())
                .await
                .unwrap()
        );

        s.delete_service_account(acc.id, sa.id, Utc::now())
            .await
            .unwrap();
        assert!(
            s.api_key_by_id(k2.id)
                .await
                .unwrap()
                .unwrap()
                .revoked_at
                .is_some()
        );
        let usage = s.account_usage(acc.id).await.unwrap();
        assert_eq!(
            (usage.users, usage.service_accounts, usage.active_api_keys),
            (1, 0, 0)
        );
    }
}

#[tokio::test]
async fn operations_progress_monotonic_terminal_sticks() {
    for b in backends().await {
        let s = &b.store;
        let acc = s.create_account(new_account("acme")).await.unwrap();
        let op = s
            .create_operation(NewOperation {
                id: Uuid::now_v7(),
                account_id: Some(acc.id),
                kind: "signup".into(),
                resource_kind: "account".into(),
                resource_id: acc.id.to_string(),
                workflow_id: "wf".into(),
                created_at: Utc::now(),
            })
            .await
            .unwrap();
        assert_eq!(op.state, "pending");
        let upd = |state: &str, progress: f64| OperationUpdate {
            state: state.into(),
            progress,
            ..Default::default()
        };
        s.update_operation(op.id, upd("in_progress", 0.5))
            .await
            .unwrap();
        let back = s
            .update_operation(op.id, upd("in_progress", 0.25))
            .await
            .unwrap();
        assert_eq!(back.progress, 0.5, "{}: progress never goes back", b.name);
        s.update_operation(op.id, upd("fulfilled", 1.0))
            .await
            .unwrap();
        let late = s
            .update_operation(op.id, upd("in_progress", 0.9))
            .await
            .unwrap();
        assert_eq!(late.state, "fulfilled", "{}: terminal state sticks", b.name);
        assert_eq!(
            s.list_operations(acc.id, None, None)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
    }
}

#[tokio::test]
async fn audit_appends_once_and_pages_newest_first() {
    for b in backends().await {
        let s = &b.store;
        let acc = s.create_account(new_account("acme")).await.unwrap();
        let mut ids = vec![];
        for i in 0..5 {
            let e = NewAuditEntry {
                id: Uuid::now_v7(),
                account_id: Some(acc.id),
                at: Utc::now(),
                actor_kind: "user".into(),
                actor_id: None,
                actor_name: Some("o@acme.io".into()),
                api_key_id: None,
                action: format!("test.{i}"),
                resource: "account/x".into(),
                source_ip: Some("127.0.0.1".into()),
                details: serde_json::json!({"i": i}),
            };
            ids.push(e.id);
            s.append_audit(e.clone()).await.unwrap();
            s.append_audit(e).await.unwrap();
        }
        let p1 = s.list_audit(acc.id, None, Some(3)).await.unwrap();
        assert_eq!(
            p1.items.len(),
            3,
            "{}: duplicates were not appended",
            b.name
        );
        assert_eq!(p1.items[0].action, "test.4");
        let p2 = s.list_audit(acc.id, p1.next_after, Some(3)).await.unwrap();
        assert_eq!(
            p2.items
                .iter()
                .map(|e| e.action.as_str())
                .collect::<Vec<_>>(),
            ["test.1", "test.0"]
        );
        assert!(p2.next_after.is_none());

        // Platform-level entries (no account) are listed apart from every account's.
        let platform = NewAuditEntry {
            id: Uuid::now_v7(),
            account_id: None,
            at: Utc::now(),
            actor_kind: "platform_admin".into(),
            actor_id: None,
            actor_name: None,
            api_key_id: None,
            action: "release.create".into(),
            resource: "release/1.0.0".into(),
            source_ip: None,
            details: serde_json::json!({}),
        };
        s.append_audit(platform).await.unwrap();
        let p = s.list_platform_audit(None, None).await.unwrap();
        assert_eq!(p.items.len(), 1, "{}", b.name);
        assert_eq!(p.items[0].action, "release.create");
        assert_eq!(
            s.list_audit(acc.id, None, None).await.unwrap().items.len(),
            5
        );
    }
}

#[tokio::test]
async fn idempotency_keys_expire_after_a_day() {
    for b in backends().await {
        let s = &b.store;
        let now = Utc::now();
        let resp = StoredResponse {
            request_digest: "r1".into(),
            status: 201,
            sealed_body: vec![1, 2, 3],
        };
        s.remember_response("scope", "k", resp.clone(), now - Duration::hours(25))
            .await
            .unwrap();
        assert!(
            s.idempotent_response("scope", "k", now)
                .await
                .unwrap()
                .is_none(),
            "{}",
            b.name
        );
        s.remember_response("scope", "k", resp.clone(), now)
            .await
            .unwrap();
        let other = StoredResponse {
            request_digest: "r2".into(),
            ..resp.clone()
        };
        s.remember_response("scope", "k", other, now).await.unwrap();
        assert_eq!(
            s.idempotent_response("scope", "k", now).await.unwrap(),
            Some(resp),
            "{}",
            b.name
        );
        assert!(
            s.idempotent_response("other", "k", now)
                .await
                .unwrap()
                .is_none()
        );
    }
}

fn new_cell(id: &str, region: &str) -> NewCell {
    NewCell {
        id: id.into(),
        region_id: region.into(),
        ring: 1,
        provider: "local".into(),
        status: "provisioning".into(),
        labels: serde_json::json!({}),
        provider_config: serde_json::json!({}),
        desired: serde_json::json!({}),
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn cells_generations_reports_and_status_transitions() {
    for b in backends().await {
        let s = &b.store;
        s.create_region("local-east", "local", "here", Utc::now())
            .await
            .unwrap();
        assert!(
            matches!(
                s.create_region("local-east", "local", "again", Utc::now())
                    .await,
                Err(StoreError::Conflict(_))
            ),
            "{}",
            b.name
        );
        let id = s.next_cell_id("local-east").await.unwrap();
        assert_eq!(id, "local-east-1");
        s.create_cell(new_cell(&id, "local-east")).await.unwrap();
        assert_eq!(s.next_cell_id("local-east").await.unwrap(), "local-east-2");
        assert!(matches!(
            s.create_cell(new_cell(&id, "local-east")).await,
            Err(StoreError::Conflict(_))
        ));

        // Desired state: a stale writer loses.
        let g = s
            .replace_desired(&id, 1, serde_json::json!({"runtimes": {}}))
            .await
            .unwrap();
        assert_eq!(g, 2);
        assert!(matches!(
            s.replace_desired(&id, 1, serde_json::json!({})).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            s.replace_desired("nope", 1, serde_json::json!({})).await,
            Err(StoreError::NotFound(_))
        ));

        // Reports: an older generation never lowers what was observed, but counts as alive.
        let t1 = Utc::now();
        s.record_observed(
            &id,
            serde_json::json!({"g": 2}),
            2,
            Some("127.0.0.1:1".into()),
            t1,
        )
        .await
        .unwrap();
        let t2 = t1 + Duration::seconds(1);
        s.record_observed(&id, serde_json::json!({"g": 1}), 1, None, t2)
            .await
            .unwrap();
        let c = s.cell(&id).await.unwrap();
        assert_eq!(c.observed_generation, Some(2), "{}", b.name);
        assert_eq!(c.ingress_address.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(c.observed_at.map(|t| t.timestamp()), Some(t2.timestamp()));

        // Status: of two racing transitions exactly one wins.
        let live = ["provisioning", "joining", "healthy", "unhealthy", "failed"];
        assert!(
            s.transition_cell_status(&id, &live, "decommissioning")
                .await
                .unwrap()
        );
        assert!(
            !s.transition_cell_status(&id, &live, "decommissioning")
                .await
                .unwrap()
        );
        assert!(matches!(
            s.transition_cell_status("nope", &live, "decommissioning")
                .await,
            Err(StoreError::NotFound(_))
        ));
        assert_eq!(s.cells_in_region("local-east").await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn join_tokens_are_used_once_and_expire() {
    for b in backends().await {
        let s = &b.store;
        s.create_region("r", "self_hosted", "rack", Utc::now())
            .await
            .unwrap();
        s.create_cell(new_cell("r-1", "r")).await.unwrap();
        let now = Utc::now();
        s.create_join_token("r-1", &"a".repeat(64), now + Duration::hours(1))
            .await
            .unwrap();
        s.create_join_token("r-1", &"b".repeat(64), now - Duration::seconds(1))
            .await
            .unwrap();
        assert_eq!(
            s.consume_join_token(&"a".repeat(64), now).await.unwrap(),
            "r-1"
        );
        assert!(
            matches!(
                s.consume_join_token(&"a".repeat(64), now).await,
                Err(StoreError::NotFound(_))
            ),
            "used twice on {}",
            b.name
        );
        assert!(matches!(
            s.consume_join_token(&"b".repeat(64), now).await,
            Err(StoreError::NotFound(_))
        ));
        // Revoking the identity also drops the cell's remaining tokens.
        s.create_join_token("r-1", &"c".repeat(64), now + Duration::hours(1))
            .await
            .unwrap();
        s.set_cell_identity("r-1", &"f".repeat(64), now + Duration::days(1))
            .await
            .unwrap();
        s.revoke_cell_identity("r-1").await.unwrap();
        assert!(s.cell("r-1").await.unwrap().identity_fingerprint.is_none());
        assert!(matches!(
            s.consume_join_token(&"c".repeat(64), now).await,
            Err(StoreError::NotFound(_))
        ));
    }
}

#[tokio::test]
async fn pki_objects_first_writer_wins_and_renewal_replaces() {
    for b in backends().await {
        let s = &b.store;
        let obj = |pem: &str| tessera_store::entity::pki_object::Model {
            id: "root".into(),
            kind: "root_ca".into(),
            cell_id: None,
            chain_pem: pem.into(),
            sealed_key: vec![1, 2, 3],
            not_before: Utc::now(),
            not_after: Utc::now() + Duration::days(1),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let first = s.insert_pki_object_if_absent(obj("first")).await.unwrap();
        let second = s.insert_pki_object_if_absent(obj("second")).await.unwrap();
        assert_eq!(
            (first.chain_pem.as_str(), second.chain_pem.as_str()),
            ("first", "first"),
            "{}",
            b.name
        );
        s.replace_pki_object(obj("renewed")).await.unwrap();
        assert_eq!(
            s.pki_object("root").await.unwrap().unwrap().chain_pem,
            "renewed"
        );
        assert_eq!(s.list_pki_objects().await.unwrap().len(), 1);
    }
}

fn new_namespace(account_id: Uuid, name: &str) -> (NewNamespace, NewOperation) {
    let id = Uuid::now_v7();
    (
        NewNamespace {
            id,
            account_id,
            name: name.into(),
            region_id: "local-east".into(),
            retention_days: 3,
            accepted_ca_pem: String::new(),
            generated_ca: true,
            temporal_namespace: format!("{name}.acme"),
            host: format!("{name}.acme.example"),
            created_at: Utc::now(),
        },
        NewOperation {
            id: Uuid::now_v7(),
            account_id: Some(account_id),
            kind: "namespace.create".into(),
            resource_kind: "namespace".into(),
            resource_id: id.to_string(),
            workflow_id: format!("namespace-{id}"),
            created_at: Utc::now(),
        },
    )
}

#[tokio::test]
async fn namespaces_names_quota_placement_and_deletion() {
    for b in backends().await {
        let s = &b.store;
        let acc = s.create_account(new_account("acme")).await.unwrap();
        let (ns, op) = new_namespace(acc.id, "orders");
        let (created, first_op) = s.create_namespace(ns, op).await.unwrap();
        assert_eq!(created.state, "provisioning", "{}", b.name);
        assert_eq!(first_op.state, "pending");
        assert_eq!(
            s.open_operation_of("namespace.create", &created.id.to_string())
                .await
                .unwrap(),
            Some(first_op.id)
        );

        // A live name is taken once per account; the failed attempt leaves no operation.
        let (dup, dup_op) = new_namespace(acc.id, "orders");
        let dup_op_id = dup_op.id;
        let err = s.create_namespace(dup, dup_op).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{}: {err}", b.name);
        assert!(matches!(
            s.operation(dup_op_id).await,
            Err(StoreError::NotFound(_))
        ));
        let other = s.create_account(new_account("globex")).await.unwrap();
        let (theirs, op) = new_namespace(other.id, "orders");
        s.create_namespace(theirs, op).await.unwrap();

        // Placement sticks to the first cell chosen.
        let placed = s.place_namespace(created.id, "cell-a").await.unwrap();
        assert_eq!(placed.cell_id.as_deref(), Some("cell-a"));
        let again = s.place_namespace(created.id, "cell-b").await.unwrap();
        assert_eq!(again.cell_id.as_deref(), Some("cell-a"), "{}", b.name);
        assert_eq!(
            s.namespaces_per_cell().await.unwrap(),
            vec![("cell-a".to_string(), 1)]
        );

        // A claimed delete is not undone by a late step; deleted frees the name.
        assert!(
            s.transition_namespace_state(created.id, &["provisioning", "active"], "deleting")
                .await
                .unwrap()
        );
        assert!(
            !s.transition_namespace_state(created.id, &["provisioning", "active"], "deleting")
                .await
                .unwrap(),
            "a second delete loses"
        );
        s.set_namespace_state(created.id, "active").await.unwrap();
        assert_eq!(
            s.namespace_by_id(created.id).await.unwrap().state,
            "deleting"
        );
        s.mark_namespace_deleted(created.id, Utc::now())
            .await
            .unwrap();
        assert!(matches!(
            s.namespace(acc.id, "orders").await,
            Err(StoreError::NotFound(_))
        ));
        let kept = s.namespace_by_id(created.id).await.unwrap();
        assert_eq!(kept.state, "deleted", "the row stays for the audit trail");
        assert!(kept.deleted_at.is_some());
        assert!(s.namespaces_per_cell().await.unwrap().is_empty());
        let (reused, op) = new_namespace(acc.id, "orders");
        s.create_namespace(reused, op).await.unwrap();
        assert_eq!(s.count_namespaces(acc.id).await.unwrap(), 1);
        let listed = s.list_namespaces(acc.id, None, None).await.unwrap();
        assert_eq!(listed.items.len(), 1);

        // The quota counts live namespaces only.
        for i in 1..acc.max_namespaces {
            let (n, op) = new_namespace(acc.id, &format!("ns{i}"));
            s.create_namespace(n, op).await.unwrap();
        }
        let (n, op) = new_namespace(acc.id, "over");
        let err = s.create_namespace(n, op).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Quota { limit: 10, .. }),
            "{}: {err}",
            b.name
        );
        assert_eq!(s.account_usage(acc.id).await.unwrap().namespaces, 10);
    }
}

#[tokio::test]
async fn replicas_one_per_region_at_most_two_and_a_replicated_namespace_does_not_move() {
    for b in backends().await {
        let s = &b.store;
        let acc = s.create_account(new_account("acme")).await.unwrap();
        let (ns, op) = new_namespace(acc.id, "orders");
        let (ns, _) = s.create_namespace(ns, op).await.unwrap();
        let replica = |region: &str| NewReplica {
            id: Uuid::now_v7(),
            namespace_id: ns.id,
            region_id: region.into(),
            cell_id: format!("{region}-1"),
            replica_url: format!("file:///r/{region}"),
        };
        // Only an active namespace gets one.
        let err = s.create_replica(replica("west")).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{}: {err}", b.name);
        s.set_namespace_state(ns.id, "active").await.unwrap();
        let first = s.create_replica(replica("west")).await.unwrap();
        assert_eq!(first.state, "adding");
        let dup = s.create_replica(replica("west")).await.unwrap_err();
        assert!(dup.to_string().contains("already has a replica"), "{dup}");
        // Every replica of a namespace follows the one replica its store streams into.
        let second = s.create_replica(replica("east")).await.unwrap();
        assert_eq!(second.replica_url, "file:///r/west", "{}", b.name);
        let third = s.create_replica(replica("south")).await.unwrap_err();
        assert!(
            third.to_string().contains("the most it may have"),
            "{third}"
        );
        let moved = s
            .create_migration(NewMigration {
                id: Uuid::now_v7(),
                namespace_id: ns.id,
                account_id: acc.id,
                operation_id: Uuid::now_v7(),
                source_cell: "east-1".into(),
                target_cell: "east-2".into(),
                cutover: "auto".into(),
                replica_url: "file:///r/m".into(),
            })
            .await
            .unwrap_err();
        assert!(moved.to_string().contains("replicas"), "{moved}");
        assert_eq!(s.namespace_by_id(ns.id).await.unwrap().state, "active");
        s.delete_replica_record(first.id).await.unwrap();
        assert_eq!(s.replicas_of(ns.id).await.unwrap(), vec![second]);
    }
}
