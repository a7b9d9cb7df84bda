//! XML bodies read as OpenConnector reads them (`xmlToArray`): the root element becomes an object whose
//! children are keys, attributes sit under `@attributes`, text next to attributes or children under
//! `#text`, a repeated element becomes a list, and an element holding only text is that text. The
//! result goes through the same `resultsPosition` and `idPosition` as JSON.

use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Map, Value};

/// Whether a body that is not JSON looks like XML (after a BOM and whitespace).
pub fn looks_like_xml(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// One element being read.
#[derive(Default)]
struct Element {
    name: String,
    attributes: Map<String, Value>,
    children: Map<String, Value>,
    text: String,
}

impl Element {
    fn into_value(self) -> Value {
        let text = self.text.trim();
        if self.attributes.is_empty() && self.children.is_empty() {
            return Value::String(text.to_string());
        }
        let mut out = Map::new();
        if !self.attributes.is_empty() {
            out.insert("@attributes".into(), Value::Object(self.attributes));
        }
        out.extend(self.children);
        if !text.is_empty() {
            out.insert("#text".into(), Value::String(text.to_string()));
        }
        Value::Object(out)
    }

    /// Adds a child; a second child of the same name turns the key into a list. An element's own value
    /// is never a list (text or an object), so a list there always holds repeats.
    fn add_child(&mut self, name: String, value: Value) {
        match self.children.get_mut(&name) {
            Some(Value::Array(items)) => items.push(value),
            Some(existing) => {
                let first = std::mem::take(existing);
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                self.children.insert(name, value);
            }
        }
    }
}

/// Reads an XML document into a JSON value; elements may nest `max_depth` deep (each is a level of
/// the value, which later stages walk recursively).
pub fn to_json(text: &str, limits: &crate::limits::ReadLimits) -> Result<Value, String> {
    let max_depth = limits.max_depth;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Value> = None;
    // What the reading holds, counted as it grows: an element of four bytes (`<a/>`) becomes an
    // object of a hundred, so a body within maxResponseBytes could read as gigabytes.
    let most = limits.max_response_bytes.bytes().saturating_mul(XML_GROWTH);
    let mut held = 0u64;
    let mut hold = |bytes: usize| {
        held = held.saturating_add(bytes as u64);
        if held > most {
            return Err(crate::limits::OverLimit::bytes(
                format!("the XML body read as JSON (up to {XML_GROWTH} × its limit)"),
                "maxResponseBytes",
                limits.max_response_bytes,
            )
            .to_string());
        }
        Ok(())
    };
    loop {
        let event = reader.read_event().map_err(|e| format!("not well-formed XML at byte {}: {e}", reader.buffer_position()))?;
        match &event {
            Event::Start(start) | Event::Empty(start) => hold(ELEMENT_COST + start.len() * 2)?,
            Event::Text(text) => hold(text.len())?,
            Event::CData(data) => hold(data.len())?,
            _ => {}
        }
        match event {
            Event::Start(start) => {
                if stack.len() >= max_depth {
                    let path: Vec<&str> = stack.iter().skip(1).take(4).map(|e| e.name.as_str()).collect();
                    let path = if stack.len() > 5 { format!("{}…", path.join(".")) } else { path.join(".") };
                    return Err(crate::limits::too_deep("the XML body", max_depth, &path));
                }
                stack.push(open(&start)?);
            }
            Event::Empty(start) => {
                let element = open(&start)?;
                close(element, &mut stack, &mut root);
            }
            Event::End(_) => {
                let element = stack.pop().ok_or("an end tag without its start tag")?;
                close(element, &mut stack, &mut root);
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.xml10_content());
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&data.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(top) = stack.last_mut() {
                    let name = reference.xml10_content();
                    top.text.push_str(&resolve_entity(&name).ok_or_else(|| format!("unknown entity `&{name};`"))?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "no root element".to_string())
}

/// How many times its limit an XML body may take once read (see [`to_json`]).
const XML_GROWTH: u64 = 16;
/// What an element is counted as beyond its bytes: the object it becomes.
const ELEMENT_COST: usize = 96;

fn open(start: &quick_xml::events::BytesStart) -> Result<Element, String> {
    let mut element = Element { name: start.name().0.to_string(), ..Element::default() };
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| format!("a broken attribute: {e}"))?;
        let value = attribute.normalized_value(quick_xml::XmlVersion::Implicit1_0).map_err(|e| format!("a broken attribute value: {e}"))?;
        element.attributes.insert(attribute.key.0.to_string(), Value::String(value.into_owned()));
    }
    Ok(element)
}

/// Hangs a finished element on its parent, or makes it the document (whose own name is dropped).
fn close(element: Element, stack: &mut [Element], root: &mut Option<Value>) {
    let name = element.name.clone();
    let value = element.into_value();
    match stack.last_mut() {
        Some(parent) => parent.add_child(name, value),
        None => *root = Some(value),
    }
}

fn resolve_entity(name: &str) -> Option<String> {
    let text = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix('x').or_else(|| number.strip_prefix('X')) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            return char::from_u32(code).map(String::from);
        }
    };
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_like_openconnector() {
        let xml = r#"<?xml version="1.0"?>
            <response total="2">
              <items>
                <item identifier="a1"><title>Bella &amp; co</title><tag>x</tag><tag>y</tag></item>
                <item identifier="a2"><title><![CDATA[Max <3>]]></title><empty/></item>
              </items>
              <note lang="en">hi</note>
            </response>"#;
        assert!(looks_like_xml(xml.as_bytes()));
        assert_eq!(
            to_json(xml, &crate::limits::ReadLimits::default()).unwrap(),
            json!({"@attributes": {"total": "2"}, "items": {"item": [
                {"@attributes": {"identifier": "a1"}, "title": "Bella & co", "tag": ["x", "y"]},
                {"@attributes": {"identifier": "a2"}, "title": "Max <3>", "empty": ""}
            ]}, "note": {"@attributes": {"lang": "en"}, "#text": "hi"}})
        );
    }

    #[test]
    fn depth_is_bounded() {
        let nested = |levels: usize| format!("{}x{}", "<a>".repeat(levels), "</a>".repeat(levels));
        assert_eq!(
            to_json(&nested(3), &crate::limits::ReadLimits { max_depth: 3, ..Default::default() }).unwrap(),
            json!({"a": {"a": "x"}})
        );
        let error = to_json(&nested(100_000), &crate::limits::ReadLimits::default()).unwrap_err();
        assert!(error.starts_with("the XML body nested deeper than 128 levels at a.a.a.a…"), "{error}");
    }

    #[test]
    fn broken_xml_is_an_error() {
        assert!(to_json("<a><b></a>", &crate::limits::ReadLimits::default()).is_err());
        // Many tiny elements: their reading is held to a multiple of the body's limit.
        let small = crate::limits::ReadLimits { max_response_bytes: crate::limits::ByteSize(64 * 1024), ..Default::default() };
        let tiny = format!("<r>{}</r>", "<a/>".repeat(15 * 1024));
        let error = to_json(&tiny, &small).unwrap_err();
        assert!(error.contains("maxResponseBytes (64 KiB)"), "{error}");
        assert!(to_json(&format!("<r>{}</r>", "<a/>".repeat(100)), &small).is_ok());
        assert!(!looks_like_xml(b"{\"a\": 1}"));
    }
}
