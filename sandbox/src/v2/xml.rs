//! The flat XML of API v2: `<xml><key>value</key>…</xml>`.
//!
//! Parsing is deliberately strict and safe: a `<!DOCTYPE` is refused (so no DTD and no custom
//! entity can ever be declared), only the five predefined entities and character references are
//! resolved, elements may not nest below the root, and a key may appear only once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use quick_xml::Reader;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;

/// Why an API v2 XML document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XmlError {
    /// The document declares a DTD (`<!DOCTYPE …>`), which WeChat Pay never sends or accepts.
    #[error("DOCTYPE is not allowed")]
    Doctype,
    /// The document is not well-formed or not the flat `<xml><k>v</k>…</xml>` shape.
    #[error("malformed XML: {0}")]
    Malformed(String),
}

fn malformed(m: impl Into<String>) -> XmlError {
    XmlError::Malformed(m.into())
}

/// Parses `<xml><k>v</k>…</xml>` into a sorted map. Text and CDATA are concatenated per key.
pub fn parse(bytes: &[u8]) -> Result<BTreeMap<String, String>, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    let mut map = BTreeMap::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    let mut key: Option<String> = None;
    let mut value = String::new();
    loop {
        let event = reader.read_event().map_err(|e| malformed(e.to_string()))?;
        match event {
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Start(e) => {
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| malformed("bad element name"))?
                    .to_owned();
                match depth {
                    0 if !seen_root => seen_root = true,
                    0 => return Err(malformed("more than one root element")),
                    1 => {
                        key = Some(name);
                        value.clear();
                    }
                    _ => return Err(malformed("nested elements are not allowed")),
                }
                depth += 1;
            }
            Event::Empty(e) => {
                let name = std::str::from_utf8(e.name().as_ref())
                    .map_err(|_| malformed("bad element name"))?
                    .to_owned();
                match depth {
                    0 if !seen_root => {
                        seen_root = true;
                    }
                    1 => {
                        if map.insert(name, String::new()).is_some() {
                            return Err(malformed("duplicate key"));
                        }
                    }
                    _ => return Err(malformed("unexpected element")),
                }
            }
            Event::End(_) => {
                if depth == 2
                    && let Some(k) = key.take()
                    && map.insert(k, std::mem::take(&mut value)).is_some()
                {
                    return Err(malformed("duplicate key"));
                }
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| malformed("unbalanced end tag"))?;
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| malformed(e.to_string()))?;
                if depth == 2 {
                    value.push_str(&s);
                } else if !s.trim().is_empty() {
                    return Err(malformed("text outside an element"));
                }
            }
            Event::CData(c) => {
                if depth != 2 {
                    return Err(malformed("CDATA outside an element"));
                }
                let s = c.decode().map_err(|e| malformed(e.to_string()))?;
                value.push_str(&s);
            }
            Event::GeneralRef(r) => {
                if depth != 2 {
                    return Err(malformed("reference outside an element"));
                }
                if let Some(ch) = r.resolve_char_ref().map_err(|e| malformed(e.to_string()))? {
                    value.push(ch);
                } else {
                    let name = r.decode().map_err(|e| malformed(e.to_string()))?;
                    let resolved = resolve_predefined_entity(&name)
                        .ok_or_else(|| malformed(format!("unknown entity &{name};")))?;
                    value.push_str(resolved);
                }
            }
            Event::Eof => break,
        }
    }
    if !seen_root || depth != 0 {
        return Err(malformed("no complete root element"));
    }
    Ok(map)
}

fn push_cdata(out: &mut String, value: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

/// Serialises pairs as WeChat does: `<xml><k><![CDATA[v]]></k>…</xml>`, plain digits unquoted.
pub fn to_xml<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("<xml>");
    for (k, v) in pairs {
        let _ = write!(out, "<{k}>");
        if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(v);
        } else {
            push_cdata(&mut out, v);
        }
        let _ = write!(out, "</{k}>");
    }
    out.push_str("</xml>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_cdata_entities_and_tricky_values() {
        let xml = to_xml([("a", "x]]>y"), ("b", "12"), ("c", "<&>")]);
        let map = parse(xml.as_bytes()).unwrap();
        assert_eq!(map["a"], "x]]>y");
        assert_eq!(map["b"], "12");
        assert_eq!(map["c"], "<&>");
        let map = parse(b"<?xml version=\"1.0\"?><xml><k>a&amp;b&#x41;</k><e/></xml>").unwrap();
        assert_eq!(map["k"], "a&bA");
        assert_eq!(map["e"], "");
    }

    #[test]
    fn refuses_doctype_entities_nesting_and_duplicates() {
        let xxe = b"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><k>&e;</k></xml>";
        assert_eq!(parse(xxe), Err(XmlError::Doctype));
        assert!(parse(b"<xml><k>&e;</k></xml>").is_err());
        assert!(parse(b"<xml><k><n>1</n></k></xml>").is_err());
        assert!(parse(b"<xml><k>1</k><k>2</k></xml>").is_err());
        assert!(parse(b"<xml><k>1</k>").is_err());
        assert!(parse(b"").is_err());
    }
}
