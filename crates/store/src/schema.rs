//! The database schema, written once for both backends: only types that SQLite and
//! PostgreSQL map alike (text, integers, booleans, timestamps). JSON is stored as text.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamp,
        token_generation -> Integer,
        email -> Nullable<Text>,
        email_notifications -> Bool,
    }
}

diesel::table! {
    mail_outbox (id) {
        id -> Text,
        to_address -> Text,
        subject -> Text,
        body -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    mail_seen (user_id, key) {
        user_id -> Text,
        key -> Text,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    sign_in_guard (key) {
        key -> Text,
        attempts -> Integer,
        last_attempt -> Timestamp,
        locked_until -> Nullable<Timestamp>,
        next_turn -> Nullable<Timestamp>,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> Timestamp,
        actor_id -> Nullable<Text>,
        address -> Nullable<Text>,
        action -> Text,
        subject -> Text,
        details -> Text,
        actor -> Nullable<Text>,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
    }
}

diesel::table! {
    event_log_head (id) {
        id -> Integer,
        position -> BigInt,
    }
}

diesel::table! {
    instances (id) {
        id -> Text,
        version -> Text,
        started_at -> Timestamp,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    stream_leases (id) {
        id -> Text,
        instance_id -> Text,
        user_id -> Text,
        opened_at -> Timestamp,
    }
}

diesel::table! {
    work_leases (name) {
        name -> Text,
        holder -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(stream_leases -> instances (instance_id));

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    templates (id) {
        id -> Text,
        name -> Text,
        builtin -> Bool,
        latest_version -> Integer,
        created_at -> Timestamp,
    }
}

diesel::table! {
    template_versions (template_id, version) {
        template_id -> Text,
        version -> Integer,
        name -> Text,
        content -> Text,
        item_count -> Integer,
        created_by -> Text,
        created_at -> Timestamp,
        source_run_id -> Nullable<Text>,
        source_proposal_id -> Nullable<Text>,
    }
}

diesel::table! {
    runs (id) {
        id -> Text,
        template_id -> Text,
        template_version -> Integer,
        template_name -> Text,
        product -> Text,
        release_version -> Text,
        environment -> Text,
        status -> Text,
        window_start -> Nullable<Timestamp>,
        window_end -> Nullable<Timestamp>,
        expected_downtime_minutes -> Nullable<Integer>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        closed_at -> Nullable<Timestamp>,
        last_seq -> BigInt,
        overridden -> Bool,
        stage_entered_at -> Nullable<Timestamp>,
        commit_sha -> Nullable<Text>,
        committed_at -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        rollback_decided_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    run_items (id) {
        id -> Text,
        run_id -> Text,
        position -> Integer,
        part_index -> Integer,
        section_index -> Integer,
        reference -> Text,
        title -> Text,
        guidance -> Nullable<Text>,
        gate -> Text,
        applies -> Text,
        required -> Bool,
        kind -> Text,
        role -> Nullable<Text>,
        status -> Text,
        assignee -> Nullable<Text>,
        note -> Nullable<Text>,
        evidence_url -> Nullable<Text>,
        skip_reason -> Nullable<Text>,
        version -> BigInt,
        updated_by -> Nullable<Text>,
        updated_at -> Nullable<Timestamp>,
        approvers -> Nullable<Text>,
        worked_by -> Nullable<Text>,
        probe -> Nullable<Text>,
        evidence_required -> Bool,
        evidence -> Text,
        probe_result_id -> Nullable<Text>,
        probe_next_at -> Nullable<Timestamp>,
        record -> Nullable<Text>,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    run_issues (id) {
        id -> Text,
        run_id -> Text,
        number -> Integer,
        title -> Text,
        severity -> Text,
        status -> Text,
        owner -> Nullable<Text>,
        item_ids -> Text,
        notes -> Nullable<Text>,
        accepted_reason -> Nullable<Text>,
        accepted_by -> Nullable<Text>,
        accepted_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    retrospectives (run_id) {
        run_id -> Text,
        status -> Text,
        held_at -> Nullable<Timestamp>,
        went_well -> Nullable<Text>,
        went_badly -> Nullable<Text>,
        root_cause -> Nullable<Text>,
        lessons -> Nullable<Text>,
        updated_by -> Text,
        updated_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    action_items (id) {
        id -> Text,
        run_id -> Text,
        title -> Text,
        assignee -> Text,
        due_on -> Text,
        status -> Text,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
    }
}

diesel::table! {
    template_proposals (id) {
        id -> Text,
        template_id -> Text,
        base_version -> Integer,
        run_id -> Text,
        summary -> Text,
        markdown -> Text,
        diff -> Text,
        status -> Text,
        proposed_by -> Text,
        proposed_at -> Timestamp,
        reviewed_by -> Nullable<Text>,
        reviewed_at -> Nullable<Timestamp>,
        review_reason -> Nullable<Text>,
        accepted_version -> Nullable<Integer>,
    }
}

diesel::table! {
    probe_results (id) {
        id -> Text,
        run_id -> Text,
        item_id -> Text,
        checked_at -> Timestamp,
        passed -> Bool,
        summary -> Text,
        observed -> Nullable<Text>,
        url -> Text,
        http_status -> Nullable<Integer>,
        latency_ms -> Nullable<BigInt>,
        excerpt -> Nullable<Text>,
        trigger_kind -> Text,
        checked_by -> Text,
    }
}

diesel::table! {
    environments (name) {
        name -> Text,
        base_url -> Nullable<Text>,
        updated_by -> Text,
        updated_at -> Timestamp,
        description -> Nullable<Text>,
        position -> Integer,
        promotes_from -> Nullable<Text>,
        requires_promotion -> Bool,
        dashboards -> Text,
        contacts -> Text,
        archived_at -> Nullable<Timestamp>,
        version -> BigInt,
    }
}

diesel::table! {
    environment_locks (id) {
        id -> Text,
        environment -> Text,
        reason -> Text,
        locked_by -> Text,
        locked_at -> Timestamp,
        until -> Nullable<Timestamp>,
        run_id -> Nullable<Text>,
        unlocked_by -> Nullable<Text>,
        unlocked_at -> Nullable<Timestamp>,
        unlock_note -> Nullable<Text>,
    }
}

diesel::table! {
    freeze_windows (id) {
        id -> Text,
        environment -> Text,
        reason -> Text,
        recurrence -> Text,
        window_start -> Text,
        window_end -> Text,
        time_zone -> Text,
        until -> Nullable<Text>,
        created_by -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    decisions (id) {
        id -> Text,
        run_id -> Text,
        point_key -> Text,
        outcome -> Text,
        rationale -> Text,
        criteria -> Text,
        decided_by -> Text,
        decided_at -> Timestamp,
        seq -> BigInt,
        stage_entered_at -> Nullable<Timestamp>,
        unmet_confirmed -> Bool,
    }
}

diesel::table! {
    item_blocks (item_id, kind) {
        item_id -> Text,
        kind -> Text,
        run_id -> Text,
        at -> Timestamp,
    }
}

diesel::table! {
    run_events (run_id, seq) {
        run_id -> Text,
        seq -> BigInt,
        event_type -> Text,
        actor -> Text,
        at -> Timestamp,
        payload -> Text,
        prev_hash -> Nullable<Text>,
        hash -> Nullable<Text>,
        position -> Nullable<BigInt>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    run_members (run_id, user_id) {
        run_id -> Text,
        user_id -> Text,
        run_role -> Text,
        added_by -> Text,
        added_at -> Timestamp,
    }
}

diesel::table! {
    signoffs (id) {
        id -> Text,
        run_id -> Text,
        item_id -> Text,
        user_id -> Text,
        username -> Text,
        role -> Text,
        verdict -> Text,
        comment -> Nullable<Text>,
        signed_at -> Timestamp,
        invalidated_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(run_members -> users (user_id));

diesel::table! {
    webhook_subscriptions (id) {
        id -> Text,
        url -> Text,
        description -> Nullable<Text>,
        format -> Text,
        event_types -> Text,
        product -> Nullable<Text>,
        environment -> Nullable<Text>,
        active -> Bool,
        disabled_reason -> Nullable<Text>,
        failing_since -> Nullable<Timestamp>,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        created_by -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        subscription_id -> Text,
        event_type -> Text,
        run_id -> Nullable<Text>,
        event_seq -> Nullable<BigInt>,
        body -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> Nullable<Timestamp>,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    webhook_attempts (delivery_id, attempt) {
        delivery_id -> Text,
        attempt -> Integer,
        at -> Timestamp,
        status_code -> Nullable<Integer>,
        latency_ms -> BigInt,
        error -> Nullable<Text>,
        response_excerpt -> Nullable<Text>,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_subscriptions (subscription_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_tokens,
    run_members,
    signoffs,
    users,
    settings,
    sign_in_guard,
    audit_log,
    templates,
    template_versions,
    runs,
    run_items,
    item_blocks,
    decisions,
    run_events,
    event_log_head,
    instances,
    stream_leases,
    work_leases,
    webhook_subscriptions,
    webhook_deliveries,
    webhook_attempts,
    mail_seen,
    mail_outbox,
    probe_results,
    environments,
    environment_locks,
    freeze_windows,
    run_issues,
    retrospectives,
    action_items,
    template_proposals,
);
