//! `grpc.health.v1`'s two messages, hand-encoded (protobuf, one field each):
//! `HealthCheckRequest { string service = 1; }` and
//! `HealthCheckResponse { ServingStatus status = 1; }`.

/// `HealthCheckResponse.ServingStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingStatus {
    Unknown = 0,
    Serving = 1,
    NotServing = 2,
    ServiceUnknown = 3,
}

impl ServingStatus {
    pub fn name(self) -> &'static str {
        match self {
            ServingStatus::Unknown => "UNKNOWN",
            ServingStatus::Serving => "SERVING",
            ServingStatus::NotServing => "NOT_SERVING",
            ServingStatus::ServiceUnknown => "SERVICE_UNKNOWN",
        }
    }

    fn from_number(number: u64) -> Option<ServingStatus> {
        Some(match number {
            0 => ServingStatus::Unknown,
            1 => ServingStatus::Serving,
            2 => ServingStatus::NotServing,
            3 => ServingStatus::ServiceUnknown,
            _ => return None,
        })
    }
}

/// `HealthCheckRequest { service }`: empty when `service` is (proto3 leaves defaults out).
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut out = Vec::new();
    if !service.is_empty() {
        out.push(0x0a); // field 1, length-delimited
        put_varint(&mut out, service.len() as u64);
        out.extend_from_slice(service.as_bytes());
    }
    out
}

/// The `service` of a `HealthCheckRequest`; unknown fields are skipped.
pub fn decode_request(bytes: &[u8]) -> Result<String, String> {
    let mut service = String::new();
    for (field, value) in fields(bytes)? {
        if let (1, Value::Bytes(text)) = (field, value) {
            service = String::from_utf8(text.to_vec())
                .map_err(|_| "the service name is not UTF-8".to_string())?;
        }
    }
    Ok(service)
}

/// `HealthCheckResponse { status }`.
pub fn encode_response(status: ServingStatus) -> Vec<u8> {
    let mut out = Vec::new();
    if status != ServingStatus::Unknown {
        out.push(0x08); // field 1, varint
        put_varint(&mut out, status as u64);
    }
    out
}

/// The `status` of a `HealthCheckResponse`.
pub fn decode_response(bytes: &[u8]) -> Result<ServingStatus, String> {
    let mut status = ServingStatus::Unknown;
    for (field, value) in fields(bytes)? {
        if let (1, Value::Varint(number)) = (field, value) {
            status = ServingStatus::from_number(number)
                .ok_or_else(|| format!("unknown serving status {number}"))?;
        }
    }
    Ok(status)
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

/// The fields of a protobuf message, as (number, value).
fn fields(mut bytes: &[u8]) -> Result<Vec<(u64, Value<'_>)>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let value = match key & 7 {
            0 => Value::Varint(varint(&mut bytes)?),
            2 => {
                let length = usize::try_from(varint(&mut bytes)?)
                    .map_err(|_| "a field is too long".to_string())?;
                if bytes.len() < length {
                    return Err("a field runs past the end of the message".into());
                }
                let (value, rest) = bytes.split_at(length);
                bytes = rest;
                Value::Bytes(value)
            }
            wire @ (1 | 5) => {
                let size = if wire == 1 { 8 } else { 4 };
                if bytes.len() < size {
                    return Err("a field runs past the end of the message".into());
                }
                bytes = &bytes[size..];
                Value::Fixed
            }
            wire => return Err(format!("unsupported protobuf wire type {wire}")),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes
            .split_first()
            .ok_or_else(|| "a varint runs past the end of the message".to_string())?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint is longer than 10 bytes".into())
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        assert_eq!(encode_request(""), Vec::<u8>::new());
        assert_eq!(encode_request("demo.Echo"), b"\x0a\x09demo.Echo");
        assert_eq!(
            decode_request(&encode_request("demo.Echo")).unwrap(),
            "demo.Echo"
        );
        assert_eq!(decode_request(b"").unwrap(), "");
        for status in [
            ServingStatus::Unknown,
            ServingStatus::Serving,
            ServingStatus::NotServing,
            ServingStatus::ServiceUnknown,
        ] {
            assert_eq!(decode_response(&encode_response(status)).unwrap(), status);
        }
        assert_eq!(encode_response(ServingStatus::Serving), [0x08, 0x01]);
    }

    #[test]
    fn unknown_fields_are_skipped_and_truncation_is_an_error() {
        // field 2 (varint 300), field 1 = SERVING, field 3 (fixed32).
        let bytes = [0x10, 0xac, 0x02, 0x08, 0x01, 0x1d, 1, 2, 3, 4];
        assert_eq!(decode_response(&bytes).unwrap(), ServingStatus::Serving);
        assert!(decode_request(&[0x0a, 0x05, b'a']).is_err());
        assert!(decode_response(&[0x08, 0x09]).is_err());
    }
}
