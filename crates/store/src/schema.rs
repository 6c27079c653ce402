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
    }
}

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
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    users,
    settings,
    templates,
    template_versions,
    runs,
    run_items,
    decisions,
    run_events,
);
