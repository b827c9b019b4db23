//! Which exposition format a scraper gets: OpenMetrics text, unless its `Accept` prefers
//! Prometheus' older text format (`text/plain; version=0.0.4`), which is then derived from the
//! OpenMetrics encoding.

use axum::http::HeaderMap;
use axum::http::header::ACCEPT;

/// The two formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `application/openmetrics-text; version=1.0.0`: the default.
    OpenMetrics,
    /// `text/plain; version=0.0.4`: for scrapers that ask for it over OpenMetrics.
    Text,
}

impl Format {
    /// The format `headers`' `Accept` prefers: text only when `text/plain` has a higher
    /// q-value than `application/openmetrics-text` (absent counts as 0); OpenMetrics for no
    /// `Accept`, `*/*`, ties and anything else.
    pub(super) fn negotiate(headers: &HeaderMap) -> Format {
        let mut openmetrics = 0.0_f32;
        let mut text = 0.0_f32;
        for value in headers.get_all(ACCEPT) {
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or("").to_ascii_lowercase();
                let q = parts
                    .filter_map(|p| p.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                    .map_or(1.0, |(_, v)| v.trim().parse().unwrap_or(0.0));
                match media.as_str() {
                    "application/openmetrics-text" => openmetrics = openmetrics.max(q),
                    "text/plain" => text = text.max(q),
                    _ => {}
                }
            }
        }
        if text > openmetrics {
            Format::Text
        } else {
            Format::OpenMetrics
        }
    }

    /// The `Content-Type` of a body in this format.
    pub(super) fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Prometheus text format 0.0.4 from OpenMetrics text as `prometheus_client` writes it: no
/// `# EOF` or `# UNIT` lines; a counter family is named for its `_total` samples; `info` is a
/// gauge and `unknown` is `untyped`; exemplars are dropped.
pub(super) fn openmetrics_to_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // `# HELP` comes before `# TYPE`: held until the type says whether the name changes.
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
        } else if line.starts_with("# ") {
            // `# UNIT` and `# EOF`: not in the text format.
        } else {
            // A sample; an exemplar follows ` # ` and is not in the text format.
            let sample = line.split_once(" # ").map_or(line, |(s, _)| s);
            out.push_str(sample);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(value: &str) -> Format {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_str(value).unwrap());
        Format::negotiate(&headers)
    }

    #[test]
    fn openmetrics_unless_text_is_preferred() {
        assert_eq!(Format::negotiate(&HeaderMap::new()), Format::OpenMetrics);
        assert_eq!(accept("*/*"), Format::OpenMetrics);
        // What Prometheus sends.
        assert_eq!(
            accept(
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                 version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
            ),
            Format::OpenMetrics
        );
        assert_eq!(accept("text/plain;version=0.0.4"), Format::Text);
        assert_eq!(
            accept("text/plain; version=0.0.4; q=0.9, application/openmetrics-text; q=0.5"),
            Format::Text
        );
        assert_eq!(accept("text/plain;q=0"), Format::OpenMetrics);
    }

    #[test]
    fn text_names_counters_for_their_samples() {
        let om = "# HELP thumbd_jobs Jobs done.\n# TYPE thumbd_jobs counter\n\
                  thumbd_jobs_total{outcome=\"ok\"} 3\n\
                  # HELP thumbd_build Build.\n# TYPE thumbd_build info\n\
                  thumbd_build_info{version=\"1\"} 1\n\
                  # HELP t_seconds Time.\n# TYPE t_seconds histogram\n# UNIT t_seconds seconds\n\
                  t_seconds_bucket{le=\"+Inf\"} 1 # {id=\"x\"} 0.5\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP thumbd_jobs_total Jobs done.\n# TYPE thumbd_jobs_total counter\n\
             thumbd_jobs_total{outcome=\"ok\"} 3\n\
             # HELP thumbd_build_info Build.\n# TYPE thumbd_build_info gauge\n\
             thumbd_build_info{version=\"1\"} 1\n\
             # HELP t_seconds Time.\n# TYPE t_seconds histogram\n\
             t_seconds_bucket{le=\"+Inf\"} 1\n"
        );
    }
}
