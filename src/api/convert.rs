//! Domain -> proto conversions shared by the handlers.

use prost_types::{ListValue, Struct, Timestamp, value::Kind};
use serde_json::{Map, Value};

use crate::{
    pb,
    store::connections::{ConnectionRow, status},
};

/// Unix seconds -> Timestamp.
pub(super) fn timestamp(secs: i64) -> Timestamp {
    Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

/// A stored row -> the secret-free proto Connection.
pub(super) fn connection(row: ConnectionRow) -> pb::Connection {
    let status = match row.status.as_str() {
        status::ACTIVE => pb::ConnectionStatus::Active,
        status::NEEDS_REAUTH => pb::ConnectionStatus::NeedsReauth,
        _ => pb::ConnectionStatus::Revoked,
    };
    pb::Connection {
        id: row.id,
        provider: row.provider,
        subject: row.subject,
        provider_user_id: row.provider_user_id,
        scopes: row
            .scopes
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        status: status.into(),
        access_token_expires_at: row.access_token_expires_at.map(timestamp),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
    }
}

/// A JSON object -> google.protobuf.Struct.
pub(super) fn json_struct(map: Map<String, Value>) -> Struct {
    Struct {
        fields: map.into_iter().map(|(k, v)| (k, json_value(v))).collect(),
    }
}

fn json_value(value: Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(ListValue {
            values: items.into_iter().map(json_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(json_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_becomes_struct() {
        let Value::Object(map) =
            serde_json::json!({"id": "u1", "credits": 12, "tags": ["a"], "x": null})
        else {
            panic!("object")
        };
        let s = json_struct(map);
        assert_eq!(s.fields["credits"].kind, Some(Kind::NumberValue(12.0)));
        assert_eq!(s.fields["id"].kind, Some(Kind::StringValue("u1".into())));
        assert!(matches!(s.fields["tags"].kind, Some(Kind::ListValue(_))));
    }
}
