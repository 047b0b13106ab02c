//! What time explains: whether Docker Hub's answer now fits what another node supplied
//! `age` ago, per resource. Anything else is a disagreement, and its text is the evidence
//! written to the log. The rules (docs/DESIGN.md, "The network as one cache"):
//!
//! - a build status and the endpoint that gave it are exact, except a status from build
//!   history that was queued or building (0–9), which may have finished since (the tag
//!   endpoint only ever says 10);
//! - a repository's pull count only grows, and by at most a tenth plus 1,000 an hour since
//!   the fill was fetched (at least an hour's worth); its star count moves by at most 10 plus
//!   a hundredth; `is_automated` is exact; its last update only moves forward, and only to a
//!   time after the fill was fetched;
//! - a tag (alone or in the list) that the hub shows pushed no later than the fill was
//!   fetched, or pushed when the fill says it was, must be exact: size, images, digests; one
//!   pushed since may differ, and a fill never names a push later than the hub's;
//! - a tag list must not name a tag the hub's complete list lacks, nor leave out one the hub
//!   shows pushed before the fill was fetched (when the fill's list was complete);
//! - "not found" must still be not found, unless the hub shows it pushed since.
//!
//! One minute of slack covers clocks and the time between the owner's fetch and its answer.

use std::time::{Duration, SystemTime};

use crate::hub::repository::RepositoryInfo;
use crate::hub::tag::TagInfo;
use crate::hub::tag_list::TagList;
use crate::hub::{HubError, HubStatus, StatusSource, parse_time};

/// Clock and transit slack allowed on every time comparison.
pub(crate) const SLACK: Duration = Duration::from_secs(60);

/// Pulls a repository may gain in an hour beyond a tenth of its count.
const PULLS_AN_HOUR: u64 = 1_000;

/// `Ok` when `hub` explains `filled` (fetched at `filled_at`), `Err(evidence)` otherwise.
pub type Verdict = Result<(), String>;

/// The lookups' view of a result: found, or why not.
fn missing(result: &Result<impl Sized, HubError>) -> bool {
    matches!(
        result,
        Err(HubError::NotFound | HubError::RepositoryNotFound)
    )
}

/// The shared shape: both found, both missing, or one of each (explained only by a push
/// after the fill, which `pushed_since` tells).
pub(crate) fn compare<V>(
    filled: &Result<V, HubError>,
    hub: &Result<V, HubError>,
    found: impl FnOnce(&V, &V) -> Verdict,
    pushed_since: impl FnOnce(&V) -> bool,
) -> Verdict {
    match (filled, hub) {
        (Ok(filled), Ok(hub)) => found(filled, hub),
        (f, h) if missing(f) && missing(h) => Ok(()),
        (f, Ok(hub)) if missing(f) => {
            if pushed_since(hub) {
                Ok(())
            } else {
                Err("supplied \"not found\" for what Docker Hub has".into())
            }
        }
        (Ok(_), h) if missing(h) => Err("supplied what Docker Hub does not have".into()),
        // The hub gave no usable answer: nothing to judge by (the caller does not ask).
        _ => Ok(()),
    }
}

/// Whether `time` (as the hub writes it) is later than the fill's fetch, less the slack.
fn after(time: Option<&str>, filled_at: SystemTime) -> bool {
    let Some(at) = time.and_then(parse_time) else {
        return false;
    };
    at + SLACK >= filled_at
}

pub fn status(
    filled: &Result<HubStatus, HubError>,
    hub: &Result<HubStatus, HubError>,
    _filled_at: SystemTime,
) -> Verdict {
    compare(
        filled,
        hub,
        |f, h| {
            if f.source != h.source {
                return Err(format!(
                    "supplied a status from {:?}, Docker Hub answers from {:?}",
                    f.source, h.source
                ));
            }
            let was_building =
                f.source == StatusSource::BuildHistory && (0..=9).contains(&f.status);
            if f.status == h.status || was_building {
                Ok(())
            } else {
                Err(format!(
                    "supplied build status {}, Docker Hub says {}",
                    f.status, h.status
                ))
            }
        },
        // A status carries no time: a tag pushed a minute after a "not found" is rare,
        // and the not-found lifetime is one minute anyway.
        |_| false,
    )
}

/// A repository's fill fetched at `filled_at`, judged at `now` (its pull count may have
/// grown by so much an hour since).
pub fn repository(
    filled: &Result<RepositoryInfo, HubError>,
    hub: &Result<RepositoryInfo, HubError>,
    filled_at: SystemTime,
    now: SystemTime,
) -> Verdict {
    compare(
        filled,
        hub,
        |f, h| {
            if f.pull_count > h.pull_count {
                return Err(format!(
                    "supplied {} pulls, more than Docker Hub's {} (pulls only grow)",
                    f.pull_count, h.pull_count
                ));
            }
            let hours = now
                .duration_since(filled_at)
                .unwrap_or_default()
                .as_secs()
                .div_ceil(3600)
                .max(1);
            if h.pull_count - f.pull_count > f.pull_count / 10 + PULLS_AN_HOUR.saturating_mul(hours)
            {
                return Err(format!(
                    "supplied {} pulls, Docker Hub says {}",
                    f.pull_count, h.pull_count
                ));
            }
            if f.star_count.abs_diff(h.star_count) > 10 + h.star_count / 100 {
                return Err(format!(
                    "supplied {} stars, Docker Hub says {}",
                    f.star_count, h.star_count
                ));
            }
            if f.is_automated != h.is_automated {
                return Err("supplied another automated-build flag".into());
            }
            if f.last_updated != h.last_updated && !after(h.last_updated.as_deref(), filled_at) {
                return Err(format!(
                    "supplied last update {:?}, Docker Hub says {:?}, before the fill",
                    f.last_updated, h.last_updated
                ));
            }
            Ok(())
        },
        |h| after(h.last_updated.as_deref(), filled_at),
    )
}

/// Whether two copies of a tag say the same. A field older nodes do not read
/// (`tag_last_pushed`, an image's `last_pushed`) is compared only when both copies have it:
/// a node of an older version supplies tags without it, and is right.
fn agree(f: &TagInfo, h: &TagInfo) -> bool {
    fn both_or_either(a: &Option<String>, b: &Option<String>) -> bool {
        a.is_none() || b.is_none() || a == b
    }
    f.name == h.name
        && f.full_size == h.full_size
        && f.last_updated == h.last_updated
        && both_or_either(&f.tag_last_pushed, &h.tag_last_pushed)
        && f.images.len() == h.images.len()
        && f.images.iter().zip(&h.images).all(|(a, b)| {
            a.architecture == b.architecture
                && a.os == b.os
                && a.variant == b.variant
                && a.digest == b.digest
                && a.size == b.size
                && both_or_either(&a.last_pushed, &b.last_pushed)
        })
}

/// One tag, alone or in a list.
fn same_tag(f: &TagInfo, h: &TagInfo, filled_at: SystemTime) -> Verdict {
    if agree(f, h) {
        return Ok(());
    }
    let pushed = |t: &TagInfo| t.pushed_at().and_then(parse_time);
    match (pushed(f), pushed(h)) {
        // The same push holds the same images, whatever age the fill claims.
        (Some(mine), Some(theirs)) if mine == theirs => {
            return Err(format!(
                "supplied tag {} unlike Docker Hub's of the same push {:?}",
                f.name,
                h.pushed_at()
            ));
        }
        (Some(mine), Some(theirs)) if mine > theirs => {
            return Err(format!(
                "supplied tag {} pushed {:?}, later than Docker Hub's last push {:?}",
                f.name,
                f.pushed_at(),
                h.pushed_at()
            ));
        }
        _ => {}
    }
    if after(h.pushed_at(), filled_at) {
        return Ok(());
    }
    Err(format!(
        "supplied tag {} unlike Docker Hub's, which was last pushed {:?}, before the fill",
        f.name,
        h.pushed_at()
    ))
}

pub fn tag(
    filled: &Result<std::sync::Arc<TagInfo>, HubError>,
    hub: &Result<std::sync::Arc<TagInfo>, HubError>,
    filled_at: SystemTime,
) -> Verdict {
    compare(
        filled,
        hub,
        |f, h| same_tag(f, h, filled_at),
        |h| after(h.pushed_at(), filled_at),
    )
}

pub fn tag_list(
    filled: &Result<std::sync::Arc<TagList>, HubError>,
    hub: &Result<std::sync::Arc<TagList>, HubError>,
    filled_at: SystemTime,
) -> Verdict {
    compare(
        filled,
        hub,
        |f, h| {
            for tag in &f.tags {
                match h.tags.iter().find(|t| t.name == tag.name) {
                    Some(theirs) => same_tag(tag, theirs, filled_at)?,
                    None if !h.truncated => {
                        return Err(format!(
                            "supplied tag {}, which Docker Hub does not list",
                            tag.name
                        ));
                    }
                    None => {}
                }
            }
            if !f.truncated {
                let hidden = h.tags.iter().find(|t| {
                    !after(t.pushed_at(), filled_at)
                        && !f.tags.iter().any(|mine| mine.name == t.name)
                });
                if let Some(hidden) = hidden {
                    return Err(format!(
                        "left out tag {}, pushed {:?}, before the fill",
                        hidden.name,
                        hidden.pushed_at()
                    ));
                }
            }
            Ok(())
        },
        |h| h.tags.iter().any(|t| after(t.pushed_at(), filled_at)),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::hub::StatusSource;
    use crate::hub::tag::ImageInfo;

    fn at(text: &str) -> SystemTime {
        parse_time(text).expect("a time")
    }

    fn repo(pulls: u64, stars: u64, updated: &str) -> Result<RepositoryInfo, HubError> {
        Ok(RepositoryInfo {
            pull_count: pulls,
            star_count: stars,
            is_automated: false,
            last_updated: Some(updated.into()),
        })
    }

    fn tag_info(name: &str, size: u64, updated: &str) -> TagInfo {
        TagInfo {
            name: name.into(),
            full_size: Some(size),
            last_updated: Some(updated.into()),
            tag_last_pushed: None,
            images: vec![ImageInfo {
                architecture: "amd64".into(),
                os: Some("linux".into()),
                variant: None,
                digest: Some(format!("sha256:{size}")),
                size: Some(size),
                last_pushed: None,
            }],
        }
    }

    #[test]
    fn pulls_may_grow_a_little_but_never_shrink() {
        let fetched = at("2026-12-01T10:00:00Z");
        let now = at("2026-12-01T12:00:00Z");
        let old = "2026-11-01T00:00:00.000000Z";
        let judge = |f, h| repository(&repo(f, 5, old), &repo(h, 5, old), fetched, now);
        assert!(judge(1000, 1500).is_ok());
        assert!(judge(2000, 1500).is_err());
        assert!(judge(0, 5_000_000).is_err());
        // Two hours: a tenth plus 1,000 an hour.
        assert!(judge(1000, 3100).is_ok());
        assert!(judge(1000, 3101).is_err());
        assert!(repository(&repo(1000, 500, old), &repo(1000, 5, old), fetched, now).is_err());
    }

    #[test]
    fn a_later_push_explains_a_new_last_update_and_an_earlier_one_does_not() {
        let fetched = at("2026-12-01T10:00:00Z");
        let filled = repo(10, 1, "2026-11-01T00:00:00Z");
        let now = at("2026-12-01T10:10:00Z");
        let judge = |pushed| repository(&filled, &repo(10, 1, pushed), fetched, now);
        assert!(judge("2026-12-01T10:05:00.5Z").is_ok());
        assert!(judge("2026-11-20T00:00:00Z").is_err());
    }

    #[test]
    fn a_status_is_exact_unless_it_was_still_building() {
        let s = |status| {
            Ok(HubStatus {
                status,
                source: StatusSource::BuildHistory,
            })
        };
        let now = SystemTime::from(crate::tools::clock::wall());
        assert!(status(&s(10), &s(10), now).is_ok());
        assert!(status(&s(3), &s(10), now).is_ok());
        assert!(status(&s(-1), &s(10), now).is_err());
        assert!(status(&Err(HubError::NotFound), &s(10), now).is_err());
        assert!(status(&s(10), &Err(HubError::RepositoryNotFound), now).is_err());
        assert!(status(&Err(HubError::NotFound), &Err(HubError::NotFound), now).is_ok());
        // The hub not answering judges nothing.
        assert!(status(&s(-1), &Err(HubError::Timeout), now).is_ok());
    }

    #[test]
    fn a_tag_pushed_before_the_fill_must_match_exactly() {
        let fetched = at("2026-12-01T10:00:00Z");
        let before = "2026-11-30T00:00:00Z";
        let filled = Ok(Arc::new(tag_info("1.0", 100, before)));
        assert!(
            tag(
                &filled,
                &Ok(Arc::new(tag_info("1.0", 100, before))),
                fetched
            )
            .is_ok()
        );
        assert!(
            tag(
                &filled,
                &Ok(Arc::new(tag_info("1.0", 999, before))),
                fetched
            )
            .is_err()
        );
        let repushed = "2026-12-01T10:03:00Z";
        assert!(
            tag(
                &filled,
                &Ok(Arc::new(tag_info("1.0", 999, repushed))),
                fetched
            )
            .is_ok()
        );
    }

    /// A node of an older version supplies tags without the fields it does not read; the
    /// hub's copy here has them. That is agreement, and a difference where both have them
    /// is not.
    #[test]
    fn fields_an_older_node_does_not_read_are_compared_only_when_both_have_them() {
        let fetched = at("2026-12-01T10:00:00Z");
        let before = "2026-11-30T00:00:00Z";
        let old = tag_info("1.0", 100, before);
        let mut hub = old.clone();
        hub.tag_last_pushed = Some(before.into());
        hub.images[0].last_pushed = Some(before.into());
        assert!(tag(&Ok(Arc::new(old)), &Ok(Arc::new(hub.clone())), fetched).is_ok());
        let mut forged = hub.clone();
        forged.images[0].last_pushed = Some("2020-01-01T00:00:00Z".into());
        assert!(tag(&Ok(Arc::new(forged)), &Ok(Arc::new(hub)), fetched).is_err());
    }

    #[test]
    fn a_tag_list_may_not_invent_or_hide_tags() {
        let fetched = at("2026-12-01T10:00:00Z");
        let before = "2026-11-30T00:00:00Z";
        let list = |tags: Vec<TagInfo>| {
            Ok(Arc::new(TagList {
                count: tags.len() as u64,
                tags,
                truncated: false,
            }))
        };
        let hub = list(vec![tag_info("1.0", 1, before), tag_info("0.9", 2, before)]);
        assert!(tag_list(&hub.clone(), &hub, fetched).is_ok());
        let invented = list(vec![
            tag_info("9.9", 1, before),
            tag_info("1.0", 1, before),
            tag_info("0.9", 2, before),
        ]);
        assert!(tag_list(&invented, &hub, fetched).is_err());
        let hidden = list(vec![tag_info("0.9", 2, before)]);
        assert!(tag_list(&hidden, &hub, fetched).is_err());
        // A tag pushed after the fill is missing from it for good reason.
        let newer = list(vec![
            tag_info("1.1", 3, "2026-12-01T10:02:00Z"),
            tag_info("1.0", 1, before),
            tag_info("0.9", 2, before),
        ]);
        assert!(tag_list(&hub, &newer, fetched).is_ok());
    }
}
