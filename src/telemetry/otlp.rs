//! OTLP's trace request (`ExportTraceServiceRequest`, opentelemetry-proto v1) in protobuf, written by
//! hand: the handful of messages a span needs do not earn a protobuf toolchain in the build. Field
//! numbers are the proto's; anything a span does not use is left out (protobuf readers skip absent
//! fields).

/// A finished span, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_span_id: Option<[u8; 8]>,
    pub name: String,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: Vec<(String, AttributeValue)>,
    /// An error message, when the span ended in one (status ERROR); else status UNSET.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    String(String),
    Bool(bool),
    Int(i64),
    Double(f64),
}

/// Encodes one request: a resource (the service's attributes), one scope, the spans.
pub fn encode_request(resource: &[(String, AttributeValue)], scope: &str, version: &str, spans: &[SpanRecord]) -> Vec<u8> {
    let mut resource_spans = Vec::new();
    let mut resource_message = Vec::new();
    for (key, value) in resource {
        message(&mut resource_message, 1, &key_value(key, value));
    }
    message(&mut resource_spans, 1, &resource_message);
    let mut scope_spans = Vec::new();
    let mut scope_message = Vec::new();
    string(&mut scope_message, 1, scope);
    string(&mut scope_message, 2, version);
    message(&mut scope_spans, 1, &scope_message);
    for span in spans {
        message(&mut scope_spans, 2, &encode_span(span));
    }
    message(&mut resource_spans, 2, &scope_spans);
    let mut request = Vec::new();
    message(&mut request, 1, &resource_spans);
    request
}

fn encode_span(span: &SpanRecord) -> Vec<u8> {
    let mut out = Vec::new();
    bytes(&mut out, 1, &span.trace_id);
    bytes(&mut out, 2, &span.span_id);
    if let Some(parent) = &span.parent_span_id {
        bytes(&mut out, 4, parent);
    }
    string(&mut out, 5, &span.name);
    // SPAN_KIND_INTERNAL: the job and its stages are ours; requests say their method and URL.
    varint_field(&mut out, 6, 1);
    fixed64(&mut out, 7, span.start_unix_nano);
    fixed64(&mut out, 8, span.end_unix_nano);
    for (key, value) in &span.attributes {
        message(&mut out, 9, &key_value(key, value));
    }
    if let Some(error) = &span.error {
        let mut status = Vec::new();
        string(&mut status, 2, error);
        varint_field(&mut status, 3, 2); // STATUS_CODE_ERROR
        message(&mut out, 15, &status);
    }
    out
}

fn key_value(key: &str, value: &AttributeValue) -> Vec<u8> {
    let mut any = Vec::new();
    match value {
        AttributeValue::String(s) => string(&mut any, 1, s),
        AttributeValue::Bool(b) => varint_field(&mut any, 2, u64::from(*b)),
        AttributeValue::Int(i) => varint_field(&mut any, 3, *i as u64),
        AttributeValue::Double(d) => {
            tag(&mut any, 4, 1);
            any.extend_from_slice(&d.to_le_bytes());
        }
    }
    let mut out = Vec::new();
    string(&mut out, 1, key);
    message(&mut out, 2, &any);
    out
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, 0);
    varint(out, value);
}

fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&value.to_le_bytes());
}

fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    tag(out, field, 2);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

fn message(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    bytes(out, field, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_are_protobuf_wire_format() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02], "300 as in the protobuf encoding guide");
        let mut out = Vec::new();
        string(&mut out, 2, "testing");
        assert_eq!(out, b"\x12\x07testing", "field 2, length-delimited, as in the guide");
        // A negative int64 is ten bytes, two's complement.
        let mut out = Vec::new();
        varint_field(&mut out, 3, -1i64 as u64);
        assert_eq!(out.len(), 11);
    }
}
