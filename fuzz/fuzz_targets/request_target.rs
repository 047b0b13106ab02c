//! Fuzzes the handlers' request parser (`http::router::parse`, the one the handlers call), and the
//! badge drawn from what they carry: no input panics, every accepted name is a valid Docker
//! Hub name, and the SVG is well-formed XML whatever `text=` holds.

#![no_main]

use dockerhub_build_status::badge::{self, Badge, Color};
use dockerhub_build_status::hub::names::{Organization, Repository, Tag};
use dockerhub_build_status::http::router;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // hyper hands the handlers a path and a query split at the first '?'.
    let (path, query) = text.split_once('?').unwrap_or((&text, ""));
    let target = router::parse(path, query);
    // The route label is one of the metrics' fixed set, whatever the path.
    assert!(dockerhub_build_status::metrics::ROUTES.contains(&target.route.name()));
    if let Some(Ok(image)) = &target.image() {
        // Whatever was decoded must pass the checks again: nothing unchecked reaches a URL.
        assert!(Organization::parse(image.organization.as_str()).is_ok());
        assert!(Repository::parse(image.repository.as_str()).is_ok());
        assert!(Tag::parse(image.tag.as_str()).is_ok());
        let key = image.to_string();
        assert!(!key.contains(['/', '?', '#', '%']) || key.matches('/').count() == 1);
    }
    if let Some(label) = target.label() {
        let svg = badge::render(&Badge {
            label,
            message: "ok",
            color: Color::BrightGreen,
            style: target.style().unwrap_or_default(),
            logo: target.logo(),
            // The request's colours as the handlers pass them, read as badge-maker reads them.
            color_override: target.query.color.as_deref(),
            label_color: target.query.label_color.as_deref(),
            logo_color: target.query.logo_color.as_deref(),
        });
        let doc = roxmltree::Document::parse(&svg)
            .unwrap_or_else(|e| panic!("badge is not XML ({e}) for label {label:?}"));
        // The label can only ever be text: no element a browser would run.
        assert!(!doc.descendants().any(|n| n.has_tag_name("script")
            || n.has_tag_name("foreignObject")));
    }
});
