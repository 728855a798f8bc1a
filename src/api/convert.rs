//! Domain -> proto conversions shared by the handlers.

use prost_types::{ListValue, Struct, Timestamp, value::Kind};
use serde_json::{Map, Value};

use crate::{
    domain::{Connection, ConnectionStatus},
    pb,
};

/// Unix seconds -> Timestamp.
pub(super) fn timestamp(secs: i64) -> Timestamp {
    Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

/// A domain connection -> the secret-free proto Connection.
pub(super) fn connection(c: Connection) -> pb::Connection {
    let status = match c.status {
        ConnectionStatus::Active => pb::ConnectionStatus::Active,
        ConnectionStatus::NeedsReauth => pb::ConnectionStatus::NeedsReauth,
        ConnectionStatus::Revoked => pb::ConnectionStatus::Revoked,
    };
    pb::Connection {
        id: c.id.to_string(),
        provider: c.provider.to_string(),
        subject: c.subject.to_string(),
        provider_user_id: c.provider_user_id,
        scopes: c.scopes.into_vec(),
        status: status.into(),
        access_token_expires_at: c.access_token_expires_at.map(timestamp),
        created_at: Some(timestamp(c.created_at)),
        updated_at: Some(timestamp(c.updated_at)),
        labels: c.labels.into_map().into_iter().collect(),
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
