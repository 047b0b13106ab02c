//! Reads the `services:` of docker-compose.yml, for the tests that check it against the
//! binary (tests/packaging.rs) and run it (tests/programs/container.rs).
//!
//! Compose files are YAML; this reads only the plain block style the file is written in:
//! each service's keys with their scalar, `[a, b]` or block-list values, a top-level
//! `x-…: &anchor` block of shared settings and `<<: *anchor` merging it into a service (the
//! service's own keys win, as in Compose). Anything else fails loudly, so that a change of
//! style cannot make a test pass by reading nothing.

use std::collections::BTreeMap;

/// One service: each key's values as strings. A block list's items are its values; an item
/// or a nested line that is itself a mapping (`- path: dbs.env`, `required: false`) reads
/// as `key=value`, so `env_file`'s long form is `["path=dbs.env", "required=false"]`.
#[derive(Debug, Default, Clone)]
pub struct Service {
    pub name: String,
    pub lists: BTreeMap<String, Vec<String>>,
    merge: Option<String>,
}

impl Service {
    /// The values of `key`, none when the service has no such key.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.lists.get(key).cloned().unwrap_or_default()
    }

    /// The one value of a scalar key, like `read_only: true`.
    pub fn scalar(&self, key: &str) -> Option<String> {
        match self.lists.get(key).map(Vec::as_slice) {
            Some([value]) => Some(value.clone()),
            Some(other) => panic!("{}: {key} is not one value: {other:?}", self.name),
            None => None,
        }
    }
}

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').trim_matches('\'').to_owned()
}

/// `key: value` inside a list or nested mapping as `key=value`; anything else as it is.
fn entry(item: &str) -> String {
    match item.split_once(": ") {
        Some((key, value)) if !key.contains(' ') => format!("{}={}", unquote(key), unquote(value)),
        _ => unquote(item),
    }
}

/// The services of a compose file, in the file's order, with their merged settings.
pub fn services(text: &str) -> Vec<Service> {
    enum Block {
        Other,
        Services,
        Template(String),
    }
    let mut services: Vec<Service> = Vec::new();
    let mut templates: BTreeMap<String, Service> = BTreeMap::new();
    let mut block = Block::Other;
    let mut key = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            block = match trimmed.split_once(':') {
                _ if trimmed == "services:" => Block::Services,
                Some((name, rest)) if name.starts_with("x-") => {
                    let anchor = rest
                        .trim()
                        .strip_prefix('&')
                        .unwrap_or_else(|| panic!("compose: {name} has no &anchor"));
                    templates.insert(
                        anchor.to_owned(),
                        Service {
                            name: name.to_owned(),
                            ..Service::default()
                        },
                    );
                    Block::Template(anchor.to_owned())
                }
                _ => Block::Other,
            };
            continue;
        }
        let (service, key_indent) = match &block {
            Block::Other => continue,
            Block::Services if indent == 2 => {
                let name = trimmed.strip_suffix(':').expect("a service name");
                services.push(Service {
                    name: name.to_owned(),
                    ..Service::default()
                });
                continue;
            }
            Block::Services => (services.last_mut().expect("inside a service"), 4),
            Block::Template(anchor) => (templates.get_mut(anchor).expect("the template"), 2),
        };
        if indent == key_indent {
            let (k, value) = trimmed
                .split_once(':')
                .unwrap_or_else(|| panic!("compose: not a key: {line}"));
            let value = value.trim();
            if k == "<<" {
                let anchor = value
                    .strip_prefix('*')
                    .unwrap_or_else(|| panic!("compose: a merge that is no alias: {line}"));
                service.merge = Some(anchor.to_owned());
                continue;
            }
            key = k.to_owned();
            let list = service.lists.entry(key.clone()).or_default();
            if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                list.extend(inner.split(',').map(unquote));
            } else if !value.is_empty() {
                list.push(unquote(value));
            }
        } else if indent > key_indent {
            let item = trimmed.strip_prefix("- ").unwrap_or(trimmed);
            if item.len() == trimmed.len() && !trimmed.contains(": ") {
                panic!("compose: a line this reader cannot read: {line}");
            }
            service
                .lists
                .entry(key.clone())
                .or_default()
                .push(entry(item));
        } else {
            panic!("compose: a line this reader cannot read: {line}");
        }
    }
    for service in &mut services {
        if let Some(anchor) = service.merge.take() {
            let template = templates
                .get(&anchor)
                .unwrap_or_else(|| panic!("compose: no &{anchor} for {}", service.name));
            for (k, values) in &template.lists {
                service
                    .lists
                    .entry(k.clone())
                    .or_insert_with(|| values.clone());
            }
        }
    }
    services
}
