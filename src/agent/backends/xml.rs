//! A flat view of a small XML document (zypper's `--xmlout`): every element with its attributes
//! (entities resolved), the names of its ancestors, and its text. Enough for the few attributes
//! the zypper backend reads; the document is parsed by quick-xml, never by string matching.

use std::collections::BTreeMap;

use quick_xml::XmlVersion;
use quick_xml::events::Event;

/// One element of the document.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Element {
    /// Its name.
    pub name: String,
    /// The names of its ancestors, outermost first.
    pub ancestors: Vec<String>,
    /// Its attributes, values unescaped.
    pub attributes: BTreeMap<String, String>,
    /// Its direct text content, unescaped.
    pub text: String,
}

impl Element {
    /// The value of attribute `key`, or "".
    pub fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }

    /// Whether `name` is among its ancestors.
    pub fn within(&self, name: &str) -> bool {
        self.ancestors.iter().any(|a| a == name)
    }
}

/// The elements of `xml` in document order, or why it does not parse.
pub(super) fn elements(xml: &str) -> Result<Vec<Element>, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut out: Vec<Element> = Vec::new();
    // Indices into `out` of the open elements.
    let mut open: Vec<usize> = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(start) => {
                out.push(element(&start, &open, &out)?);
                open.push(out.len() - 1);
            }
            Event::Empty(start) => out.push(element(&start, &open, &out)?),
            Event::Text(text) => {
                if let Some(current) = open.last().and_then(|i| out.get_mut(*i)) {
                    current.text.push_str(&text.xml10_content());
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(current) = open.last().and_then(|i| out.get_mut(*i)) {
                    let resolved = match reference.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        _ => quick_xml::escape::resolve_predefined_entity(&reference)
                            .map_or_else(|| format!("&{};", &*reference), str::to_string),
                    };
                    current.text.push_str(&resolved);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

fn element(
    start: &quick_xml::events::BytesStart<'_>,
    open: &[usize],
    out: &[Element],
) -> Result<Element, String> {
    let mut attributes = BTreeMap::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        attributes.insert(attribute.key.as_ref().to_string(), value.into_owned());
    }
    Ok(Element {
        name: start.name().as_ref().to_string(),
        ancestors: open
            .iter()
            .filter_map(|i| out.get(*i).map(|e| e.name.clone()))
            .collect(),
        attributes,
        text: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_attributes_ancestors_and_text() {
        let xml = "<?xml version='1.0'?>\n<stream><message type=\"info\">Patch &apos;P-1&apos; is &lt;b&gt;</message><a><b x=\"1 &amp; 2\"/></a></stream>";
        let all = elements(xml).unwrap();
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["stream", "message", "a", "b"]);
        assert_eq!(all[1].text, "Patch 'P-1' is <b>");
        assert_eq!(all[1].attr("type"), "info");
        assert_eq!(all[3].attr("x"), "1 & 2");
        assert!(all[3].within("a") && all[3].within("stream"));
        assert_eq!(all[3].attr("missing"), "");
    }

    #[test]
    fn malformed_xml_is_an_error() {
        assert!(elements("<a><b></a>").is_err());
    }
}
