//! The OTLP JSON mapping's field rules, used by the serde attributes in [`super::proto`]: trace
//! and span ids as hex (either case), 64-bit integers as strings or numbers, doubles as numbers
//! or `"NaN"`/`"Infinity"`, other bytes as base64, `AnyValue` as an object with one
//! `stringValue`/`intValue`/... field. Field names are lowerCamelCase; unknown fields are
//! skipped, as the specification asks of receivers.

use std::fmt;

use base64::Engine;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::proto::{AnyValue, ArrayValue, KeyValueList, Value};

/// An integer written as a JSON number or a decimal string (proto3's 64-bit rule).
struct Integer;

impl Visitor<'_> for Integer {
    type Value = i128;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer, as a number or a decimal string")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(i128::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(i128::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i128, E> {
        if v.fract() == 0.0 && v.abs() < 1.8e19 {
            Ok(v as i128)
        } else {
            Err(E::custom(format!("{v} is not an integer")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        v.trim()
            .parse::<i128>()
            .map_err(|_| E::custom(format!("{v:?} is not an integer")))
    }
}

/// A `fixed64`/`uint64` field.
pub(super) fn uint64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let value = deserializer.deserialize_any(Integer)?;
    u64::try_from(value)
        .map_err(|_| de::Error::custom(format!("{value} is out of range for uint64")))
}

/// An `int64` field.
pub(super) fn int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let value = deserializer.deserialize_any(Integer)?;
    i64::try_from(value)
        .map_err(|_| de::Error::custom(format!("{value} is out of range for int64")))
}

/// A `double` field: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"` or a numeric string.
pub(super) fn double<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    struct Double;
    impl Visitor<'_> for Double {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            match v {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                _ => v
                    .parse()
                    .map_err(|_| E::custom(format!("{v:?} is not a number"))),
            }
        }
    }
    deserializer.deserialize_any(Double)
}

/// A trace or span id: hex digits, either case; empty or `null` is the empty id.
pub(super) fn hex_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Hex;
    impl Visitor<'_> for Hex {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a hex-encoded id")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            decode_hex(v).ok_or_else(|| E::custom(format!("id {v:?} is not hex")))
        }
    }
    deserializer.deserialize_any(Hex)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digit = |byte: u8| (byte as char).to_digit(16).map(|d| d as u8);
    let bytes = text.as_bytes();
    if bytes.len() % 2 != 0 {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// A `bytes` field other than an id: base64 (standard or URL-safe, padded or not).
pub(super) fn base64_bytes<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<u8>, D::Error> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = String::deserialize(deserializer)?;
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(&text).ok())
        .ok_or_else(|| de::Error::custom("bytesValue is not base64"))
}

fn some<T>(value: T) -> Option<T> {
    Some(value)
}

fn optional_int64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    int64(deserializer).map(some)
}

fn optional_double<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    double(deserializer).map(some)
}

fn optional_bytes<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u8>>, D::Error> {
    base64_bytes(deserializer).map(some)
}

/// `AnyValue` as written in JSON: at most one field set.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawAnyValue {
    string_value: Option<String>,
    bool_value: Option<bool>,
    #[serde(deserialize_with = "optional_int64")]
    int_value: Option<i64>,
    #[serde(deserialize_with = "optional_double")]
    double_value: Option<f64>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KeyValueList>,
    #[serde(deserialize_with = "optional_bytes")]
    bytes_value: Option<Vec<u8>>,
}

impl From<RawAnyValue> for AnyValue {
    fn from(raw: RawAnyValue) -> Self {
        let value = raw
            .string_value
            .map(Value::String)
            .or(raw.bool_value.map(Value::Bool))
            .or(raw.int_value.map(Value::Int))
            .or(raw.double_value.map(Value::Double))
            .or(raw.array_value.map(Value::Array))
            .or(raw.kvlist_value.map(Value::Kvlist))
            .or(raw.bytes_value.map(Value::Bytes));
        AnyValue { value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::otlp::proto::{ExportTraceServiceRequest, KeyValue};

    #[test]
    fn ids_are_hex_in_either_case() {
        assert_eq!(decode_hex("0aFf"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
        assert_eq!(decode_hex(""), Some(vec![]));
    }

    #[test]
    fn integers_may_be_strings_and_values_take_every_form() {
        let value: KeyValue = serde_json::from_str(
            r#"{"key":"k","value":{"arrayValue":{"values":[{"intValue":"-12"},{"intValue":7},
            {"doubleValue":"NaN"},{"doubleValue":1.5},{"bytesValue":"AQI="},{"boolValue":true},
            {"kvlistValue":{"values":[{"key":"a","value":{"stringValue":"b"}}]}},{}]}}}"#,
        )
        .unwrap();
        let Some(Value::Array(array)) = value.value.unwrap().value else {
            panic!("an array");
        };
        let values: Vec<Option<Value>> = array.values.into_iter().map(|v| v.value).collect();
        assert_eq!(values[0], Some(Value::Int(-12)));
        assert_eq!(values[1], Some(Value::Int(7)));
        assert!(matches!(values[2], Some(Value::Double(d)) if d.is_nan()));
        assert_eq!(values[4], Some(Value::Bytes(vec![1, 2])));
        assert!(matches!(&values[6], Some(Value::Kvlist(list)) if list.values[0].key == "a"));
        assert_eq!(values[7], None);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#,
                "not hex",
            ),
            (
                r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":"-1"}]}]}]}"#,
                "out of range",
            ),
            (
                r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"endTimeUnixNano":"soon"}]}]}]}"#,
                "not an integer",
            ),
            (r#"{"resourceSpans":{}}"#, "expected a sequence"),
        ];
        for (body, reason) in cases {
            let error = serde_json::from_str::<ExportTraceServiceRequest>(body)
                .unwrap_err()
                .to_string();
            assert!(error.contains(reason), "{body}: {error}");
        }
    }
}
