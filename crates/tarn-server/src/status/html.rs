//! The status page as HTML: one server-rendered document, inline CSS (allowed by its hash
//! in the Content-Security-Policy), inline SVG bar charts, no script. On a narrow screen
//! the tables turn into stacked rows, so nothing scrolls sideways.

use std::fmt::Write as _;
use std::sync::OnceLock;

use super::{RevisionView, ScopeView, Series, Status};
use crate::gc::RunRecord;

// Text for HTML content and attribute values: HTML5 knows every entity the XML escaper
// writes (`&apos;` included), so the status page uses that one.
use crate::error::xml_escape as esc;

const CSS: &str = "\
*{box-sizing:border-box}\
body{margin:0;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1c2430;background:#f4f6f9}\
main{max-width:1100px;margin:0 auto;padding:16px}\
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .5em}h3{font-size:1.05em;margin:0;overflow-wrap:anywhere}\
p{margin:.3em 0}.sub{color:#5a6472}.note{color:#5a6472;font-size:.9em}\
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(110px,1fr));gap:10px}\
.card{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:10px 12px}\
.card b{display:block;font-size:1.35em}.card span{color:#5a6472;font-size:.88em}\
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:10px}\
.chart{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:10px 12px}\
.chart svg{display:block;width:100%;height:70px}\
.chart .cap{display:flex;justify-content:space-between;gap:8px;font-size:.88em;color:#5a6472}\
.r{fill:#2f6fd6}.y{fill:#1f9d75}.axis{stroke:#c9d0da;stroke-width:1}\
.scope{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:12px;margin:0 0 12px}\
.badge{display:inline-block;font-size:.75em;font-weight:600;padding:1px 7px;border-radius:9px;margin-left:6px;vertical-align:middle}\
.pub{background:#e3f3ea;color:#17653f}.priv{background:#fdecec;color:#9b1c1c}\
table{width:100%;border-collapse:collapse;margin-top:8px;font-size:.93em}\
th,td{text-align:left;padding:5px 8px;border-top:1px solid #e6e9ef;vertical-align:top}\
th{font-weight:600;color:#5a6472;font-size:.88em;border-top:0}\
td.n,th.n{text-align:right;white-space:nowrap}\
.rev{overflow-wrap:anywhere}\
.when{white-space:nowrap}.ago{color:#5a6472;white-space:nowrap}\
.empty{color:#5a6472;font-style:italic}\
.bad{color:#9b1c1c}.ok{color:#17653f}\
footer{margin:2em 0 1em;color:#5a6472;font-size:.88em}\
a{color:#2f6fd6}\
@media (max-width:640px){\
main{padding:10px}\
.cards{grid-template-columns:repeat(3,1fr);gap:8px}.card{padding:8px 10px}\
table,thead,tbody{display:block;width:100%}\
thead{display:none}\
tr{display:flex;flex-wrap:wrap;gap:2px 14px;border-top:1px solid #e6e9ef;padding:7px 0}\
td{display:block;border:0;padding:0;text-align:left;white-space:nowrap}\
td.n{text-align:left}\
td::before{content:attr(data-label) \" \";color:#5a6472;font-size:.85em}\
td.rev{flex-basis:100%;white-space:normal}td.rev::before{content:none}\
td .when{display:none}\
}";

/// The Content-Security-Policy of the page: nothing may load or run; the one inline style
/// sheet is allowed by its hash.
pub(crate) fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(CSS.as_bytes());
        format!(
            "default-src 'none'; style-src 'sha256-{}'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            base64(&digest)
        )
    })
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (c.get(1).copied().unwrap_or(0) as u32) << 8
            | c.get(2).copied().unwrap_or(0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decimal units, as everywhere in tarn (CONTRIBUTING.md).
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n}\u{a0}B");
    }
    let mut v = n as f64;
    let mut u = 0;
    v /= 1000.0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if v < 10.0 {
        format!("{v:.1}\u{a0}{}", UNITS[u])
    } else {
        format!("{v:.0}\u{a0}{}", UNITS[u])
    }
}

fn count(n: u64) -> String {
    let s = n.to_string();
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            o.push(',');
        }
        o.push(c);
    }
    o
}

/// `2026-12-02 00:01 UTC`.
fn when(t: u64) -> String {
    let iso = tarn_core::sigv4::iso8601(t); // YYYY-MM-DDTHH:MM:SSZ
    format!("{}\u{a0}{}\u{a0}UTC", &iso[..10], &iso[11..16])
}

/// `6 s ago`, `3 min ago`, `5 h ago`, `2 d ago` (never wraps: non-breaking space).
pub(crate) fn ago(now: u64, t: u64) -> String {
    let s = now.saturating_sub(t);
    let (n, unit) = match s {
        0..60 => (s, "s"),
        60..3600 => (s / 60, "min"),
        3600..86_400 => (s / 3600, "h"),
        _ => (s / 86_400, "d"),
    };
    format!("{n}\u{a0}{unit} ago")
}

fn time_cell(out: &mut String, label: &str, now: u64, t: u64) {
    let _ = write!(
        out,
        "<td data-label=\"{label}\"><span class=\"when\">{}</span> <span class=\"ago\">{}</span></td>",
        when(t),
        ago(now, t)
    );
}

fn chart(out: &mut String, title: &str, values: &[u64], class: &str, fmt: fn(u64) -> String) {
    let max = values.iter().copied().max().unwrap_or(0);
    let total: u64 = values.iter().sum();
    let n = values.len().max(1) as u64;
    // viewBox 0..1000 wide, 0..100 high; bars leave a gap of a fifth of their slot.
    let slot = 1000.0 / n as f64;
    let _ = write!(
        out,
        "<div class=\"chart\"><div class=\"cap\"><span>{}</span><span>total {} · peak {}</span></div>\
         <svg viewBox=\"0 0 1000 100\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\">\
         <line class=\"axis\" x1=\"0\" y1=\"99.5\" x2=\"1000\" y2=\"99.5\"/>",
        esc(title),
        fmt(total),
        fmt(max),
        esc(title)
    );
    for (i, v) in values.iter().enumerate() {
        if *v == 0 || max == 0 {
            continue;
        }
        let h = (*v as f64 / max as f64 * 96.0).max(2.0);
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"/>",
            i as f64 * slot + slot * 0.1,
            100.0 - h,
            slot * 0.8
        );
    }
    out.push_str("</svg></div>");
}

fn charts(out: &mut String, label: &str, s: &Series) {
    let _ = write!(out, "<h3 class=\"sub\">{label}</h3><div class=\"charts\">");
    chart(
        out,
        &format!("requests per {}", period_word(s.period_secs)),
        &s.requests,
        "r",
        count,
    );
    chart(
        out,
        &format!("bytes sent per {}", period_word(s.period_secs)),
        &s.bytes,
        "y",
        bytes,
    );
    out.push_str("</div>");
}

fn period_word(secs: u64) -> &'static str {
    if secs >= 3600 {
        "hour"
    } else {
        "minute"
    }
}

fn card(out: &mut String, value: &str, label: &str) {
    let _ = write!(
        out,
        "<div class=\"card\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    );
}

fn opt(v: Option<u64>, f: fn(u64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "—".into())
}

fn revision_row(out: &mut String, now: u64, r: &RevisionView) {
    let mut name = esc(&r.rev);
    if let Some(p) = &r.platform {
        let _ = write!(name, " <span class=\"sub\">pt/{}</span>", esc(p));
    }
    if let Some(t) = &r.toolchain {
        let _ = write!(name, " <span class=\"sub\">tc/{}</span>", esc(t));
    }
    let _ = write!(
        out,
        "<tr><td class=\"rev\" data-label=\"Revision\"><span class=\"mono\">{name}</span></td>"
    );
    time_cell(out, "Uploaded", now, r.uploaded_unix);
    let _ = write!(
        out,
        "<td class=\"n\" data-label=\"Size\">{}</td><td class=\"n\" data-label=\"Artifacts\">{}</td><td data-label=\"Uploader\">{}</td></tr>",
        opt(r.bytes, bytes),
        opt(r.artifacts, count),
        r.uploader.as_deref().map(esc).unwrap_or_else(|| "—".into())
    );
}

fn scope_block(out: &mut String, now: u64, s: &ScopeView) {
    let _ = write!(
        out,
        "<section class=\"scope\"><h3>{}<span class=\"badge {}\">{}</span></h3>\
         <p class=\"sub\">{} revisions · {} artifacts · {} · {} hits · {} misses · {} served</p>",
        esc(&s.scope),
        if s.public { "pub" } else { "priv" },
        if s.public { "public" } else { "private" },
        count(s.revisions),
        count(s.artifacts),
        bytes(s.artifact_bytes + s.revision_bytes),
        count(s.hits),
        count(s.misses),
        bytes(s.bytes_served),
    );
    if s.newest_revisions.is_empty() {
        out.push_str("<p class=\"empty\">no revision files (artifacts only)</p></section>");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Revision</th><th>Uploaded</th><th class=\"n\">Size</th>\
         <th class=\"n\">Artifacts</th><th>Uploader</th></tr></thead><tbody>",
    );
    for r in &s.newest_revisions {
        revision_row(out, now, r);
    }
    out.push_str("</tbody></table>");
    if s.revisions > s.newest_revisions.len() as u64 {
        let _ = write!(
            out,
            "<p class=\"note\">newest {} of {} revisions shown</p>",
            s.newest_revisions.len(),
            count(s.revisions)
        );
    }
    out.push_str("</section>");
}

/// Renders the page.
pub(crate) fn render(st: &Status) -> String {
    let now = st.generated_unix;
    let mut o = String::with_capacity(16 << 10);
    let _ = write!(
        o,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>tarn serve · status</title><style>{CSS}</style></head><body><main>\
         <header><h1>tarn serve</h1><p class=\"sub\">Lake artifact cache · status at <span class=\"when\">{}</span> · storage: {} · listing {} old, took {}\u{a0}ms</p>",
        when(now),
        st.scan.storage,
        ago(now, st.scan.at_unix).trim_end_matches(" ago"),
        st.scan.duration_ms
    );
    match &st.viewer.key_id {
        None => o.push_str(
            "<p class=\"note\">Public view: only public-read scopes are shown. Private scopes appear \
             for requests signed with a key that may read them (<code>/api/status</code>, see docs/server-api.md).</p>",
        ),
        Some(k) => {
            let _ = write!(o, "<p class=\"note\">Signed view for key <code>{}</code>: public scopes and those this key may read.</p>", esc(k));
        }
    }
    if let Some(e) = &st.scan.error {
        let _ = write!(o, "<p class=\"bad\">Listing storage failed: {}</p>", esc(e));
    }
    o.push_str(
        "<nav class=\"note\"><a href=\"#scopes\">Scopes</a> · <a href=\"#uploads\">Uploads</a> · \
         <a href=\"#rejections\">Rejections</a> · <a href=\"#maintenance\">GC and scrub</a> · \
         <a href=\"#traffic\">Traffic</a></nav></header><h2>Totals</h2><div class=\"cards\">",
    );
    let t = &st.totals;
    card(&mut o, &count(t.scopes), "scopes");
    card(&mut o, &count(t.revisions), "revisions");
    card(&mut o, &count(t.artifacts), "artifacts");
    card(
        &mut o,
        &bytes(t.artifact_bytes + t.revision_bytes),
        "stored",
    );
    card(&mut o, &count(t.hits), "hits");
    card(&mut o, &count(t.misses), "misses");
    card(&mut o, &bytes(t.bytes_served), "served");
    o.push_str("</div><h2 id=\"traffic\">Traffic</h2>");
    charts(&mut o, "Last hour", &st.traffic.last_hour);
    charts(&mut o, "Last day", &st.traffic.last_day);
    o.push_str(
        "<p class=\"note\">All requests to this server (every scope), since it started.</p>",
    );
    o.push_str("<h2 id=\"scopes\">Scopes</h2>");
    if st.scopes.is_empty() {
        o.push_str("<p class=\"empty\">nothing stored in a scope you may read</p>");
    }
    for s in &st.scopes {
        scope_block(&mut o, now, s);
    }
    if t.scopes > st.scopes.len() as u64 {
        let _ = write!(
            o,
            "<p class=\"note\">{} most recently changed of {} scopes shown</p>",
            st.scopes.len(),
            count(t.scopes)
        );
    }
    o.push_str("<h2 id=\"uploads\">Recent uploads</h2>");
    if st.recent_uploads.is_empty() {
        o.push_str("<p class=\"empty\">none recorded</p>");
    } else {
        o.push_str(
            "<table><thead><tr><th>Revision</th><th>When</th><th class=\"n\">Artifacts</th><th>Key</th><th>Signed by</th></tr></thead><tbody>",
        );
        for u in &st.recent_uploads {
            let _ = write!(
                o,
                "<tr><td class=\"rev\" data-label=\"Revision\">{} <span class=\"mono\">{}</span></td>",
                esc(&u.scope),
                esc(&u.rev)
            );
            time_cell(&mut o, "When", now, u.at_unix);
            let _ = write!(
                o,
                "<td class=\"n\" data-label=\"Artifacts\">{}</td><td data-label=\"Key\">{}</td><td class=\"mono\" data-label=\"Signed by\">{}</td></tr>",
                count(u.artifacts),
                u.key_id.as_deref().map(esc).unwrap_or_else(|| "—".into()),
                match (&u.signed_by, u.signature_verified) {
                    (Some(k), true) => format!("{} (trusted key)", esc(k)),
                    (Some(k), false) => format!("{} (not checked)", esc(k)),
                    (None, _) => "unsigned".into(),
                }
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("<h2 id=\"rejections\">Recent rejections</h2>");
    if st.recent_rejections.is_empty() {
        o.push_str("<p class=\"empty\">none since the server started</p>");
    } else {
        o.push_str(
            "<table><thead><tr><th>Object</th><th>When</th><th>Why</th><th>Key</th></tr></thead><tbody>",
        );
        for r in &st.recent_rejections {
            let _ = write!(
                o,
                "<tr><td class=\"rev\" data-label=\"Object\"><span class=\"mono\">{}</span></td>",
                esc(&r.key)
            );
            time_cell(&mut o, "When", now, r.at_unix);
            let _ = write!(
                o,
                "<td data-label=\"Why\"><span class=\"bad\">{} {}</span></td><td data-label=\"Key\">{}</td></tr>",
                r.status,
                esc(&r.code),
                r.key_id.as_deref().map(esc).unwrap_or_else(|| "—".into())
            );
        }
        o.push_str("</tbody></table>");
    }
    o.push_str("<h2 id=\"maintenance\">GC and scrub</h2>");
    last_run(&mut o, now, "GC", st.last_gc.as_ref(), |o, r, ms| {
        let _ = write!(
            o,
            "<span class=\"ok\">deleted {} revisions and {} artifacts ({})</span>, {} artifacts in grace, took {ms}\u{a0}ms</p>",
            count(r.revisions_deleted),
            count(r.artifacts_deleted),
            bytes(r.artifact_bytes_deleted + r.revision_bytes_deleted),
            count(r.artifacts_in_grace),
        );
    });
    last_run(&mut o, now, "scrub", st.last_scrub.as_ref(), |o, r, _| {
        let problems = r.corrupt + r.misnamed + r.bad_revisions + r.temp_leftovers;
        let _ = write!(
            o,
            "rehashed {} artifacts ({}): <span class=\"{}\">{} corrupt, {} misnamed, {} bad revisions, {} temp leftovers{}</span></p>",
            count(r.artifacts),
            bytes(r.bytes),
            if problems == 0 { "ok" } else { "bad" },
            r.corrupt,
            r.misnamed,
            r.bad_revisions,
            r.temp_leftovers,
            if r.repaired { " (repaired)" } else { "" }
        );
    });
    let _ = writeln!(
        o,
        "<footer>The same data as JSON: <code>/api/status</code> · Prometheus: <code>/metrics</code> · listings are reused for {}\u{a0}s · generated <span class=\"when\">{}</span></footer></main></body></html>",
        st.scan.ttl_secs,
        tarn_core::sigv4::iso8601(now)
    );
    o
}

/// The "Last GC" / "Last scrub" paragraph: when the run ended and how it was started, then
/// what it did (`done` writes that from the report and the duration in milliseconds, and
/// closes the paragraph) or why it failed.
fn last_run<T>(
    o: &mut String,
    now: u64,
    what: &str,
    run: Option<&RunRecord<T>>,
    done: impl FnOnce(&mut String, &T, u64),
) {
    let Some(g) = run else {
        let _ = write!(
            o,
            "<p>Last {what}: <span class=\"empty\">never recorded</span></p>"
        );
        return;
    };
    let _ = write!(
        o,
        "<p>Last {what} ({}): <span class=\"when\">{}</span> <span class=\"ago\">{}</span> · ",
        esc(&g.trigger),
        when(g.finished_unix),
        ago(now, g.finished_unix)
    );
    match &g.report {
        Some(r) => done(o, r, g.duration_ms),
        None => {
            let _ = write!(
                o,
                "<span class=\"bad\">failed: {}</span></p>",
                esc(g.error.as_deref().unwrap_or("unknown error"))
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn when_shows_the_minute_in_utc() {
        assert_eq!(when(1_709_208_059), "2024-02-29\u{a0}12:00\u{a0}UTC");
        assert_eq!(when(0), "1970-01-01\u{a0}00:00\u{a0}UTC");
    }

    /// Names come from uploads: a scope, revision, key or error code can never add markup.
    #[test]
    fn names_from_storage_are_escaped() {
        use crate::status::*;
        let evil = "<script>alert(1)</script>";
        let series = || Series {
            period_secs: 60,
            requests: vec![0, 3],
            bytes: vec![0, 5],
        };
        let st = Status {
            version: 1,
            generated_unix: 1_800_000_000,
            viewer: Viewer {
                key_id: Some(evil.into()),
            },
            scan: ScanInfo {
                at_unix: 1_800_000_000,
                duration_ms: 1,
                ttl_secs: 10,
                storage: "local",
                error: Some(evil.into()),
            },
            totals: Totals::default(),
            scopes: vec![ScopeView {
                scope: evil.into(),
                public: true,
                revisions: 1,
                artifacts: 0,
                artifact_bytes: 0,
                revision_bytes: 0,
                last_modified_unix: None,
                hits: 0,
                misses: 0,
                bytes_served: 0,
                newest_revisions: vec![RevisionView {
                    rev: evil.into(),
                    key: evil.into(),
                    platform: Some(evil.into()),
                    toolchain: Some(evil.into()),
                    uploaded_unix: 1_799_999_990,
                    file_bytes: 1,
                    artifacts: None,
                    bytes: None,
                    uploader: Some(evil.into()),
                }],
            }],
            recent_uploads: vec![journal::UploadRecord {
                at_unix: 1,
                key: evil.into(),
                scope: evil.into(),
                rev: evil.into(),
                key_id: Some(evil.into()),
                bytes: 1,
                artifacts: 1,
                signed_by: None,
                signature_verified: false,
            }],
            recent_rejections: vec![journal::Rejection {
                at_unix: 1,
                scope: evil.into(),
                key: evil.into(),
                status: 400,
                code: evil.into(),
                key_id: Some(evil.into()),
            }],
            last_gc: Some(crate::gc::RunRecord {
                finished_unix: 1,
                duration_ms: 1,
                trigger: evil.into(),
                error: Some(evil.into()),
                report: None,
            }),
            last_scrub: None,
            traffic: TrafficView {
                last_hour: series(),
                last_day: series(),
            },
        };
        let html = render(&st);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("10\u{a0}s ago"));
    }

    /// The maintenance paragraphs, pinned to the byte: a GC that ran, a scrub that failed,
    /// and a run never recorded.
    #[test]
    fn last_runs_read_the_same_for_gc_and_scrub() {
        let gc = crate::gc::RunRecord {
            finished_unix: 40,
            duration_ms: 7,
            trigger: "command".into(),
            error: None,
            report: Some(crate::gc::GcReport {
                revisions_deleted: 2,
                artifacts_deleted: 1234,
                artifact_bytes_deleted: 1000,
                revision_bytes_deleted: 500,
                artifacts_in_grace: 3,
                ..Default::default()
            }),
        };
        let mut o = String::new();
        last_run(&mut o, 100, "GC", Some(&gc), |o, r, ms| {
            let _ = write!(o, "{} in {ms}</p>", r.revisions_deleted);
        });
        assert_eq!(
            o,
            "<p>Last GC (command): <span class=\"when\">1970-01-01\u{a0}00:00\u{a0}UTC</span> \
             <span class=\"ago\">1\u{a0}min ago</span> · 2 in 7</p>"
        );
        let scrub: crate::gc::RunRecord<crate::gc::ScrubSummary> = crate::gc::RunRecord {
            finished_unix: 94,
            duration_ms: 7,
            trigger: "scheduled".into(),
            error: Some("disk <gone>".into()),
            report: None,
        };
        let mut o = String::new();
        last_run(&mut o, 100, "scrub", Some(&scrub), |_, _, _| {
            panic!("it failed")
        });
        assert_eq!(
            o,
            "<p>Last scrub (scheduled): <span class=\"when\">1970-01-01\u{a0}00:01\u{a0}UTC</span> \
             <span class=\"ago\">6\u{a0}s ago</span> · <span class=\"bad\">failed: disk &lt;gone&gt;</span></p>"
        );
        let mut o = String::new();
        last_run(
            &mut o,
            100,
            "scrub",
            None::<&crate::gc::RunRecord<()>>,
            |_, _, _| {},
        );
        assert_eq!(
            o,
            "<p>Last scrub: <span class=\"empty\">never recorded</span></p>"
        );
    }

    #[test]
    fn units_and_ages() {
        assert_eq!(bytes(999), "999\u{a0}B");
        assert_eq!(bytes(1500), "1.5\u{a0}kB");
        assert_eq!(bytes(389_000_000), "389\u{a0}MB");
        assert_eq!(ago(100, 94), "6\u{a0}s ago");
        assert_eq!(ago(10_000, 10_000 - 7200), "2\u{a0}h ago");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(esc("<a href='x'>&"), "&lt;a href=&apos;x&apos;&gt;&amp;");
    }
}
