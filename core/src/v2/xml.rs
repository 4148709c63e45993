//! The flat XML of API v2: `<xml><key>value</key>…</xml>`.
//!
//! Reading is deliberately narrow, because the bytes come from the network (notifications) or
//! an upstream we must not trust before verifying: a document type declaration (`<!DOCTYPE`,
//! hence any DTD or entity declaration) is refused outright, only XML's five predefined entities
//! and character references are resolved, no external resource is ever loaded (quick-xml has no
//! such feature), nesting deeper than `<xml><key>` is refused, and so is a key given twice (two
//! readers could pick different ones). The official docs' own security note on XML (XXE, 2018)
//! asks for exactly this: no DTD, no external entities.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::sign::Params;

/// XML that is not a flat API v2 message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid API v2 XML: {0}")]
pub struct XmlError(pub String);

fn err(message: impl Into<String>) -> XmlError {
    XmlError(message.into())
}

/// Reads a flat `<xml>…</xml>` message into its parameters (CDATA and text alike).
pub fn parse(bytes: &[u8]) -> Result<Params, XmlError> {
    let text = std::str::from_utf8(bytes).map_err(|_| err("not UTF-8"))?;
    let mut reader = Reader::from_str(text);
    reader.config_mut().trim_text(false);
    let mut params = Params::new();
    // 0: before the root; 1: inside the root; 2: inside a field; 3: after the root.
    let mut depth = 0u8;
    let mut field: Option<(String, String)> = None;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| err(format!("at byte {}: {e}", reader.buffer_position())))?;
        match event {
            Event::DocType(_) => return Err(err("a document type declaration is refused")),
            Event::Decl(_) | Event::Comment(_) => {}
            Event::PI(_) => return Err(err("processing instructions are refused")),
            Event::Start(start) => {
                let name = std::str::from_utf8(start.name().as_ref())
                    .map_err(|_| err("element name is not UTF-8"))?
                    .to_owned();
                match depth {
                    0 => depth = 1,
                    1 => {
                        field = Some((name, String::new()));
                        depth = 2;
                    }
                    2 => return Err(err(format!("nested element <{name}> is refused"))),
                    _ => return Err(err("content after the root element")),
                }
            }
            Event::Empty(empty) => {
                let name = std::str::from_utf8(empty.name().as_ref())
                    .map_err(|_| err("element name is not UTF-8"))?
                    .to_owned();
                match depth {
                    0 => depth = 3,
                    1 => insert(&mut params, name, String::new())?,
                    _ => return Err(err(format!("nested element <{name}> is refused"))),
                }
            }
            Event::End(_) => match depth {
                2 => {
                    if let Some((name, value)) = field.take() {
                        insert(&mut params, name, value)?;
                    }
                    depth = 1;
                }
                1 => depth = 3,
                _ => return Err(err("unbalanced end tag")),
            },
            Event::Text(text) => {
                let text = text.decode().map_err(|e| err(e.to_string()))?;
                match (&mut field, depth) {
                    (Some((_, value)), 2) => value.push_str(&text),
                    _ if text.trim().is_empty() => {}
                    _ => return Err(err("text outside a field")),
                }
            }
            Event::CData(data) => {
                let data = data.decode().map_err(|e| err(e.to_string()))?;
                match (&mut field, depth) {
                    (Some((_, value)), 2) => value.push_str(&data),
                    _ => return Err(err("CDATA outside a field")),
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference
                    .resolve_char_ref()
                    .map_err(|e| err(e.to_string()))?
                {
                    Some(c) => c,
                    None => match reference.as_ref() {
                        b"lt" => '<',
                        b"gt" => '>',
                        b"amp" => '&',
                        b"apos" => '\'',
                        b"quot" => '"',
                        _ => return Err(err("entity references are refused")),
                    },
                };
                match (&mut field, depth) {
                    (Some((_, value)), 2) => value.push(resolved),
                    _ => return Err(err("reference outside a field")),
                }
            }
            Event::Eof => break,
        }
    }
    if depth != 3 {
        return Err(err("the document ends before its root element is closed"));
    }
    Ok(params)
}

fn insert(params: &mut Params, name: String, value: String) -> Result<(), XmlError> {
    if params.contains_key(&name) {
        return Err(err(format!("field <{name}> is given twice")));
    }
    params.insert(name, value);
    Ok(())
}

/// Writes parameters as `<xml><k><![CDATA[v]]></k>…</xml>`, the form the official examples use.
/// Keys must be XML names of `[A-Za-z0-9_]` (all API v2 keys are); a value holding `]]>` is
/// split across two CDATA sections so that it reads back unchanged.
pub fn write(params: &Params) -> Result<String, XmlError> {
    let mut out = String::from("<xml>");
    for (key, value) in params {
        if key.is_empty()
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || key.as_bytes()[0].is_ascii_digit()
        {
            return Err(err(format!("{key:?} is not an API v2 field name")));
        }
        out.push('<');
        out.push_str(key);
        out.push('>');
        push_cdata(&mut out, value);
        out.push_str("</");
        out.push_str(key);
        out.push('>');
    }
    out.push_str("</xml>");
    Ok(out)
}

/// `<![CDATA[value]]>`, splitting any `]]>` in `value`.
pub(crate) fn push_cdata(out: &mut String, value: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&value.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_cdata_text_references_and_empty_fields() {
        let xml = "<?xml version=\"1.0\"?>\n<xml>\n  <return_code><![CDATA[SUCCESS]]></return_code>\n  <total_fee>1</total_fee>\n  <body>a &amp; b &#x4e2d;</body><attach/><x></x>\n</xml>\n";
        let p = parse(xml.as_bytes()).unwrap();
        assert_eq!(p["return_code"], "SUCCESS");
        assert_eq!(p["total_fee"], "1");
        assert_eq!(p["body"], "a & b 中");
        assert_eq!(p["attach"], "");
        assert_eq!(p["x"], "");
    }

    #[test]
    fn refuses_dtds_entities_nesting_duplicates_and_junk() {
        for bad in [
            "<!DOCTYPE xml [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><xml><a>&e;</a></xml>",
            "<!DOCTYPE xml><xml><a>1</a></xml>",
            "<xml><a>&e;</a></xml>",
            "<xml><a><b>1</b></a></xml>",
            "<xml><a>1</a><a>2</a></xml>",
            "<xml><a>1</a>",
            "<xml><a>1</a></xml><xml/>",
            "<xml>text<a>1</a></xml>",
            "<xml><a>1</b></xml>",
            "",
            "not xml",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse(b"<xml><a>\xff</a></xml>").is_err());
    }

    #[test]
    fn writes_what_it_reads() {
        let mut p = Params::new();
        p.insert("body".into(), "a]]>b<c>&".into());
        p.insert("total_fee".into(), "1".into());
        let xml = write(&p).unwrap();
        assert_eq!(parse(xml.as_bytes()).unwrap(), p);
        p.insert("bad key".into(), "x".into());
        assert!(write(&p).is_err());
    }
}
