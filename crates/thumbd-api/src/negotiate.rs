//! Which rendition of a set a `GET /v1/thumbnails/{id}` serves: `size` picks the size,
//! `format` the format, else `Accept` does (README, Renditions).

use thumbd_jobs::{JobResult, RenditionResult, RenditionStatus};

/// A result stored before renditions existed, as the one rendition it is.
fn legacy(result: &JobResult) -> RenditionResult {
    let format = result
        .content_type
        .strip_prefix("image/")
        .unwrap_or("png")
        .to_owned();
    RenditionResult {
        size: result.width.max(result.height),
        width: result.width,
        height: result.height,
        spec: format.clone(),
        format,
        content_type: result.content_type.clone(),
        bytes: result.bytes,
        etag: result.etag.clone(),
        blob_key: result.blob_key.clone(),
        budget: result.budget.clone(),
        status: RenditionStatus::Ready,
        source_key: None,
    }
}

/// What the request asked for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ask<'a> {
    /// `size=N`: the smallest size ≥ N, else the largest.
    pub size: Option<u32>,
    /// `format=F`: only that format.
    pub format: Option<&'a str>,
    /// The `Accept` header, when `format` is absent.
    pub accept: Option<&'a str>,
}

/// The choice: which rendition, and whether the answer depends on `Accept` (`Vary`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The rendition to serve.
    pub rendition: RenditionResult,
    /// The format was negotiated among several: answer with `Vary: Accept`.
    pub negotiated: bool,
}

/// Picks the rendition of `result` to serve for `ask`; `None` when `format` names one the
/// set has no ready rendition of.
pub fn choose(result: &JobResult, ask: Ask<'_>) -> Option<Choice> {
    // What can be served: the ready renditions, or a result's one thumbnail from before
    // renditions. Borrowed: only the chosen one is copied.
    let only;
    let all: Vec<&RenditionResult> = if result.renditions.is_empty() {
        only = legacy(result);
        vec![&only]
    } else {
        result
            .renditions
            .iter()
            .filter(|r| r.status == RenditionStatus::Ready)
            .collect()
    };
    // The main rendition (what a URL without parameters serves) decides the defaults; it
    // is ready by construction (the job succeeded with it).
    let main = result
        .renditions
        .iter()
        .find(|r| r.blob_key == result.blob_key)
        .unwrap_or(all[0]);
    let (main_format, main_size) = (main.format.as_str(), main.size);
    let pool: Vec<&RenditionResult> = match ask.format {
        Some(f) => all
            .into_iter()
            .filter(|r| r.format.eq_ignore_ascii_case(f))
            .collect(),
        None => all,
    };
    if pool.is_empty() {
        return None;
    }
    let size = pick_size(&pool, ask.size.unwrap_or(main_size));
    let at_size: Vec<&RenditionResult> = pool.into_iter().filter(|r| r.size == size).collect();
    let mut formats: Vec<&str> = at_size.iter().map(|r| r.format.as_str()).collect();
    formats.dedup();
    if ask.format.is_some() || formats.len() == 1 {
        return Some(Choice {
            rendition: at_size[0].clone(),
            negotiated: false,
        });
    }
    let accept = ask.accept.map(parse_accept);
    let best = at_size
        .iter()
        .max_by_key(|r| rank(r, accept.as_deref(), main_format))
        .expect("at least one rendition at the size");
    Some(Choice {
        rendition: (*best).clone(),
        negotiated: true,
    })
}

/// The smallest size in `pool` at least `want`, else the largest.
fn pick_size(pool: &[&RenditionResult], want: u32) -> u32 {
    let fitting = pool.iter().map(|r| r.size).filter(|&s| s >= want).min();
    fitting.unwrap_or_else(|| pool.iter().map(|r| r.size).max().unwrap_or(want))
}

/// How much a client wants `r`: (q in thousandths, named exactly rather than by a
/// wildcard, preference). Among types named exactly, AVIF before WebP before the rest (the
/// smaller file); where only a wildcard matches, the profile's main format first (a client
/// that names no modern format gets what it surely decodes). No `Accept` at all is a
/// wildcard for everything.
fn rank(r: &RenditionResult, accept: Option<&[(String, u16)]>, main: &str) -> (u16, bool, u8) {
    let Some(accept) = accept else {
        return (1000, false, u8::from(r.format == main));
    };
    let media = r.content_type.to_ascii_lowercase();
    let q_of = |pattern: &str| accept.iter().find(|(t, _)| t == pattern).map(|(_, q)| *q);
    if let Some(q) = q_of(&media) {
        let modern = match r.format.as_str() {
            "avif" => 3,
            "webp" => 2,
            _ => 1,
        };
        return (q, true, modern);
    }
    let q = q_of("image/*").or_else(|| q_of("*/*")).unwrap_or(0);
    (q, false, u8::from(r.format == main))
}

/// `Accept`'s media ranges, lowercased, with q-values in thousandths (1000 when absent;
/// unparsable q-values count as 0).
fn parse_accept(header: &str) -> Vec<(String, u16)> {
    header
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let media = pieces.next()?.trim().to_ascii_lowercase();
            if media.is_empty() {
                return None;
            }
            let mut q = 1000;
            for param in pieces {
                if let Some((k, v)) = param.split_once('=')
                    && k.trim().eq_ignore_ascii_case("q")
                {
                    q = qvalue(v.trim()).unwrap_or(0);
                }
            }
            Some((media, q))
        })
        .collect()
}

/// An RFC 9110 qvalue (`0`, `0.5`, `1.000`) in thousandths.
fn qvalue(v: &str) -> Option<u16> {
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{fraction:0<3}").parse().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use thumbd_jobs::{BlobKey, JobId};

    fn rendition(size: u32, format: &str, status: RenditionStatus) -> RenditionResult {
        let sha = format!("{size:032}{:032x}", format.len() * 7 + size as usize);
        RenditionResult {
            size,
            width: size,
            height: size / 2,
            format: format.into(),
            spec: format!("{size}:{format}"),
            content_type: format!("image/{format}"),
            bytes: 100,
            blob_key: BlobKey::thumbnail(&sha, JobId::new()),
            etag: sha,
            budget: "fits".into(),
            status,
            source_key: None,
        }
    }

    /// 80/160/330 WebP, 160/330 AVIF (330 pending), 330 PNG (main).
    fn web() -> JobResult {
        let renditions = vec![
            rendition(80, "webp", RenditionStatus::Ready),
            rendition(160, "webp", RenditionStatus::Ready),
            rendition(330, "webp", RenditionStatus::Ready),
            rendition(160, "avif", RenditionStatus::Ready),
            rendition(330, "avif", RenditionStatus::Pending),
            rendition(330, "png", RenditionStatus::Ready),
        ];
        JobResult {
            profile: Some("web".into()),
            ..JobResult::of_set(renditions, 5)
        }
    }

    fn pick(size: Option<u32>, format: Option<&str>, accept: Option<&str>) -> Option<String> {
        choose(
            &web(),
            Ask {
                size,
                format,
                accept,
            },
        )
        .map(|c| c.rendition.spec)
    }

    #[test]
    fn negotiation_is_said_when_several_formats_share_the_size() {
        let c = choose(
            &web(),
            Ask {
                accept: Some("image/webp"),
                ..Ask::default()
            },
        )
        .unwrap();
        assert!(c.negotiated, "{c:?}");
        let c = choose(
            &web(),
            Ask {
                size: Some(80),
                ..Ask::default()
            },
        )
        .unwrap();
        assert!(!c.negotiated, "80 has WebP only");
    }

    #[test]
    fn no_parameters_and_no_accept_serve_the_main_rendition() {
        assert_eq!(pick(None, None, None).as_deref(), Some("330:png"));
        assert_eq!(pick(None, None, Some("*/*")).as_deref(), Some("330:png"));
    }

    #[test]
    fn accept_chooses_among_ready_formats_of_the_size() {
        let browser = Some("image/avif,image/webp,*/*");
        // 330's AVIF is pending: WebP, the best ready one.
        assert_eq!(pick(None, None, browser).as_deref(), Some("330:webp"));
        assert_eq!(pick(Some(100), None, browser).as_deref(), Some("160:avif"));
        assert_eq!(
            pick(Some(100), None, Some("image/webp")).as_deref(),
            Some("160:webp")
        );
        assert_eq!(
            pick(None, None, Some("image/png")).as_deref(),
            Some("330:png")
        );
        // q-values are honoured; q=0 refuses.
        assert_eq!(
            pick(Some(160), None, Some("image/avif;q=0.5, image/webp;q=0.8")).as_deref(),
            Some("160:webp")
        );
        assert_eq!(
            pick(None, None, Some("image/webp;q=0, image/*")).as_deref(),
            Some("330:png")
        );
    }

    #[test]
    fn qvalues_are_read_as_rfc_9110_writes_them() {
        assert_eq!(qvalue("1"), Some(1000));
        assert_eq!(qvalue("0.8"), Some(800));
        assert_eq!(qvalue("0.125"), Some(125));
        assert_eq!(qvalue("0"), Some(0));
        for bad in ["1.5", "2", "0.1234", "-1", "x", ""] {
            assert_eq!(qvalue(bad), None, "{bad}");
        }
    }

    #[test]
    fn size_picks_the_smallest_at_least_as_large_else_the_largest() {
        assert_eq!(
            pick(Some(100), Some("webp"), None).as_deref(),
            Some("160:webp")
        );
        assert_eq!(
            pick(Some(1), Some("webp"), None).as_deref(),
            Some("80:webp")
        );
        assert_eq!(
            pick(Some(2000), Some("webp"), None).as_deref(),
            Some("330:webp")
        );
        assert_eq!(
            pick(Some(80), Some("png"), None).as_deref(),
            Some("330:png")
        );
        assert_eq!(pick(None, Some("jpeg"), None), None);
        // Only ready renditions count: 330 AVIF is pending.
        assert_eq!(
            pick(Some(330), Some("avif"), None).as_deref(),
            Some("160:avif")
        );
    }

    #[test]
    fn a_result_from_before_renditions_is_its_own_one_rendition() {
        let mut old = web();
        old.renditions.clear();
        let c = choose(&old, Ask::default()).unwrap();
        assert_eq!((c.rendition.format.as_str(), c.negotiated), ("png", false));
        assert!(
            choose(
                &old,
                Ask {
                    format: Some("webp"),
                    ..Ask::default()
                }
            )
            .is_none()
        );
    }
}
