//! `GET /`: a one-page HTML status view of the consumer, rendered from [`Health`].
//!
//! The page shows:
//! - the status (`ready`, `lagging`, `stalled`, `failing`, see [`crate::freshness::Status`]) in
//!   words and in colour (green, amber, red, red), as `/health` says it;
//! - freshness: upstream checkpoint ts and applied ts, each with its wall-clock time (UTC; the
//!   TSO's physical part, `ts >> 18`, is milliseconds since the epoch), the lag in ts and in
//!   milliseconds, and the files pending;
//! - the last round: start and end, discovery counts, files / rows / DDLs per table, its fatal
//!   error and its warnings (in separate lists);
//! - per-table progress: applied ts, applied schema version, and per stream (partition, writer)
//!   the date directory, last wholly applied file index and commit ts. Beyond
//!   [`MAX_TABLES_SHOWN`] tables (a changefeed may have thousands) the page lists the ones
//!   furthest behind and says how many it left out; `/health` lists all. The last round's
//!   per-table list is capped the same way (largest row counts first);
//! - the last few rounds' audit records (see [`crate::audit`], kept across restarts);
//! - the recent fatal errors (the last [`crate::freshness::RECENT_ERRORS`]) with their time;
//! - the quarantined data files (`--on-bad-file quarantine`): how many, and the newest with
//!   their path, reason and time.
//!
//! The page is self-contained (inline style, no scripts, no external assets) and reloads itself
//! every [`REFRESH_SECS`] seconds through `<meta http-equiv="refresh">`.
//!
//! # Escaping invariant
//!
//! Every text that comes from storage or the downstream (schema and table names, partition and
//! dispatcher ids, date directories, error and warning texts) goes through [`escape`] before it
//! is written into the page; only the fixed markup of this module and numbers are written as
//! they are. A table named `<script>...` therefore shows as text and never becomes markup.

use crate::freshness::{Health, RoundRecord};
use cdc_common::ts::civil_from_days;
use cdc_common::Ts;
use std::fmt::Write;

/// Seconds between the page's automatic reloads.
pub const REFRESH_SECS: u32 = 5;

/// Tables listed in each per-table section; the page stays small (and quick to render every
/// [`REFRESH_SECS`]) whatever the number of tables.
pub const MAX_TABLES_SHOWN: usize = 200;

/// The entries to list: all in their map order when they fit, otherwise the first
/// [`MAX_TABLES_SHOWN`] by `key` (ties in map order); and how many were left out.
fn shown<'a, T, K: Ord>(
    entries: impl ExactSizeIterator<Item = (&'a String, &'a T)>,
    key: impl Fn(&T) -> K,
) -> (Vec<(&'a String, &'a T)>, usize) {
    let total = entries.len();
    let mut v: Vec<(&String, &T)> = entries.collect();
    if total > MAX_TABLES_SHOWN {
        v.sort_by_key(|(_, t)| key(t));
        v.truncate(MAX_TABLES_SHOWN);
    }
    (v, total.saturating_sub(MAX_TABLES_SHOWN))
}

fn left_out(p: &mut String, n: usize, order: &str) {
    if n > 0 {
        let _ = writeln!(
            p,
            "<p class=\"warn\">{n} more tables not shown (listed: the {MAX_TABLES_SHOWN} {order}; \
             <a href=\"/health\">/health</a> has all).</p>"
        );
    }
}

/// Escapes `s` for HTML text and double- or single-quoted attribute values: `&`, `<`, `>`,
/// `"` and `'` become character references, everything else is kept.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Milliseconds since the Unix epoch as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn utc_time(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let in_day = ms % 86_400_000;
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{milli:03} UTC")
}

/// A ts with its wall-clock time, or `none` for 0.
fn ts_cell(ts: u64) -> String {
    if ts == 0 {
        "0 (none)".to_string()
    } else {
        format!("{ts} ({})", utc_time(Ts(ts).physical_ms()))
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1em}\
th,td{border:1px solid #ccc;padding:.2em .6em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.num{text-align:right;font-family:monospace}\
.fatal{color:#a00}.warn{color:#850}.ok{color:#070}\
.status{display:inline-block;padding:.2em .8em;border-radius:.3em;color:#fff;font-weight:bold}\
.status-ready{background:#070}.status-lagging{background:#a70}\
.status-stalled{background:#a00}.status-failing{background:#a00}";

/// Renders the whole page. `now_ms` (milliseconds since the epoch) is shown as the page's time.
pub fn render(h: &Health, now_ms: u64) -> String {
    let mut p = String::with_capacity(4096);
    // Writing into a String cannot fail, so the results of `write!` are ignored below.
    let _ = write!(
        p,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\
         <title>storage-consumer status</title><style>{STYLE}</style></head><body>\n\
         <h1>storage-consumer</h1>\n<p>As of {} (reloads every {REFRESH_SECS} s; \
         <a href=\"/health\">JSON</a>, <a href=\"/metrics\">metrics</a>)</p>\n",
        utc_time(now_ms)
    );
    freshness(&mut p, h);
    if let Some(g) = &h.group {
        group(&mut p, g);
    }
    match &h.last_round {
        Some(r) => last_round(&mut p, r),
        None => p.push_str("<h2>Last round</h2>\n<p>No round has finished yet.</p>\n"),
    }
    tables(&mut p, h);
    recent_rounds(&mut p, h);
    recent_errors(&mut p, h);
    quarantined(&mut p, h);
    p.push_str("</body></html>\n");
    p
}

fn freshness(p: &mut String, h: &Health) {
    let st = h.status.as_str();
    let opt = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
    let _ = writeln!(
        p,
        "<p>Status: <span class=\"status status-{st}\" id=\"status\">{st}</span> \
         ({} failed rounds in a row; last success {})</p>",
        h.freshness.consecutive_failed_rounds,
        h.freshness
            .last_success_ms_ago
            .map_or("never".to_string(), |ms| format!("{ms} ms ago")),
    );
    let _ = write!(
        p,
        "<h2>Freshness</h2>\n<table>\
         <tr><th>Upstream checkpoint ts</th><td class=\"num\">{}</td></tr>\
         <tr><th>Applied ts</th><td class=\"num\" id=\"applied-ts\">{}</td></tr>\
         <tr><th>Lag (ts)</th><td class=\"num\">{}</td></tr>\
         <tr><th>Lag (ms)</th><td class=\"num\">{}</td></tr>\
         <tr><th>Checkpoint age (ms)</th><td class=\"num\">{}</td></tr>\
         <tr><th>Files pending</th><td class=\"num\">{}</td></tr></table>\n",
        ts_cell(h.checkpoint_ts),
        h.applied_ts.map_or("unknown".to_string(), ts_cell),
        opt(h.lag_ts),
        opt(h.lag_ms),
        opt(h.freshness.checkpoint_age_ms),
        h.files_pending
    );
}

/// A group member's view: the members with their lease counts and pending work, then the
/// leases, oldest renewal first (the ones closest to expiring), at most [`MAX_TABLES_SHOWN`].
fn group(p: &mut String, g: &crate::group::GroupView) {
    let _ = writeln!(
        p,
        "<h2>Consumer group</h2>\n<p id=\"group\">Group <b>{}</b>, this member <b>{}</b>, \
         lease TTL {} ms, holding {} lease{}.</p>",
        escape(&g.group),
        escape(&g.member),
        g.lease_ttl_ms,
        g.owned.len(),
        if g.owned.len() == 1 { "" } else { "s" }
    );
    if let Some(e) = &g.heartbeat_error {
        let _ = writeln!(
            p,
            "<p class=\"fatal\" id=\"group-error\">Last heartbeat failed: {}</p>",
            escape(e)
        );
    }
    p.push_str(
        "<table id=\"group-members\"><tr><th>Member</th><th>Live</th><th>Leases</th>\
         <th>Files pending</th></tr>\n",
    );
    for m in &g.members {
        let _ = writeln!(
            p,
            "<tr><td>{}{}</td><td class=\"{}\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td></tr>",
            escape(&m.member),
            if m.member == g.member { " (this)" } else { "" },
            if m.live { "ok" } else { "warn" },
            if m.live { "yes" } else { "expired" },
            m.tables.len(),
            m.pending
        );
    }
    p.push_str(
        "</table>\n<table id=\"group-leases\"><tr><th>Lease</th><th>Owner</th>\
                <th>Epoch</th><th>Age (ms)</th></tr>\n",
    );
    let mut leases: Vec<_> = g.leases.iter().collect();
    leases.sort_by(|a, b| b.age_ms.cmp(&a.age_ms).then_with(|| a.table.cmp(&b.table)));
    let more = leases.len().saturating_sub(MAX_TABLES_SHOWN);
    for l in leases.into_iter().take(MAX_TABLES_SHOWN) {
        let owner = if l.live {
            escape(&l.owner)
        } else {
            "<i>free</i>".into()
        };
        let _ = writeln!(
            p,
            "<tr><td>{}</td><td>{owner}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            escape(&l.table),
            l.epoch,
            l.age_ms
        );
    }
    p.push_str("</table>\n");
    if more > 0 {
        let _ = writeln!(
            p,
            "<p class=\"warn\">{more} more leases not shown (listed: the {MAX_TABLES_SHOWN} \
             renewed longest ago; <a href=\"/group\">/group</a> has all).</p>"
        );
    }
}

fn last_round(p: &mut String, r: &RoundRecord) {
    let _ = write!(
        p,
        "<h2>Last round ({})</h2>\n<table>\
         <tr><th>Started</th><td>{}</td></tr>\
         <tr><th>Ended</th><td>{} ({} ms)</td></tr>\
         <tr><th>Checkpoint ts / applied ts</th><td class=\"num\">{} / {}</td></tr>\
         <tr><th>Files pending</th><td class=\"num\">{}</td></tr>\
         <tr><th>Discovery</th><td>{} list calls, {} get calls, {} new schema files, \
         {} new directories{}</td></tr></table>\n",
        r.round,
        utc_time(r.started_at_ms),
        utc_time(r.ended_at_ms),
        r.ended_at_ms.saturating_sub(r.started_at_ms),
        r.checkpoint_ts,
        r.applied_ts,
        r.files_pending,
        r.discovery.list_calls,
        r.discovery.get_calls,
        r.discovery.new_schema_files,
        r.discovery.new_dirs,
        if r.discovery.full_listing {
            ", full listing"
        } else {
            ""
        }
    );
    if r.tables.is_empty() {
        p.push_str("<p>Nothing applied.</p>\n");
    } else {
        p.push_str("<table><tr><th>Table</th><th>Files</th><th>Rows</th><th>DDLs</th></tr>\n");
        let (list, more) = shown(r.tables.iter(), |t| std::cmp::Reverse(t.rows));
        for (name, t) in list {
            let _ = writeln!(
                p,
                "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td></tr>",
                escape(name),
                t.files,
                t.rows,
                t.ddls
            );
        }
        p.push_str("</table>\n");
        left_out(p, more, "with the most rows this round");
    }
    match &r.fatal {
        Some(f) => {
            let _ = writeln!(
                p,
                "<h3>Fatal error</h3>\n<p class=\"fatal\" id=\"fatal\">{}</p>",
                escape(f)
            );
        }
        None => p.push_str("<p class=\"ok\">No fatal error.</p>\n"),
    }
    if r.warnings.is_empty() {
        p.push_str("<p>No warnings.</p>\n");
    } else {
        let _ = writeln!(
            p,
            "<h3>Warnings ({})</h3>\n<ul id=\"warnings\">",
            r.warnings.len()
        );
        for w in &r.warnings {
            let _ = writeln!(p, "<li class=\"warn\">{}</li>", escape(w));
        }
        p.push_str("</ul>\n");
    }
}

fn tables(p: &mut String, h: &Health) {
    p.push_str("<h2>Tables</h2>\n");
    if h.tables.is_empty() {
        p.push_str("<p>No tables yet.</p>\n");
        return;
    }
    p.push_str(
        "<table><tr><th>Table</th><th>Applied ts</th><th>Schema version</th>\
         <th>Partition</th><th>Writer</th><th>Version</th><th>Date</th><th>File index</th>\
         <th>Commit ts</th></tr>\n",
    );
    let (list, more) = shown(h.tables.iter(), |t| t.applied_ts);
    for (name, t) in list {
        let version = t
            .version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "-".into());
        let rows = t.streams.len().max(1);
        let _ = write!(
            p,
            "<tr><td rowspan=\"{rows}\">{}</td><td class=\"num\" rowspan=\"{rows}\">{}</td>\
             <td class=\"num\" rowspan=\"{rows}\">{version}</td>",
            escape(name),
            ts_cell(t.applied_ts)
        );
        if t.streams.is_empty() {
            p.push_str("<td colspan=\"6\">no data file applied</td></tr>\n");
        }
        for (i, s) in t.streams.iter().enumerate() {
            if i > 0 {
                p.push_str("<tr>");
            }
            let _ = writeln!(
                p,
                "<td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                escape(or_dash(&s.partition)),
                escape(or_dash(&s.dispatcher)),
                s.version,
                escape(or_dash(&s.date)),
                s.file_index,
                ts_cell(s.commit_ts)
            );
        }
    }
    p.push_str("</table>\n");
    left_out(p, more, "furthest behind");
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The last [`crate::audit::ROUNDS_ON_PAGE`] round records (kept across restarts), newest
/// first: who ran it, when, the phases reached, rows, and its fatal error or warning count.
fn recent_rounds(p: &mut String, h: &Health) {
    p.push_str("<h2>Recent rounds</h2>\n");
    if h.rounds.is_empty() {
        p.push_str("<p>None recorded yet.</p>\n");
        return;
    }
    p.push_str(
        "<table id=\"recent-rounds\"><tr><th>Ended</th><th>Consumer</th><th>Round</th>\
         <th>Phases</th><th>Rows</th><th>Outcome</th></tr>\n",
    );
    for r in h.rounds.iter().rev().take(crate::audit::ROUNDS_ON_PAGE) {
        let phases: Vec<&str> = r
            .phases
            .iter()
            .map(|ph| match ph {
                crate::freshness::Phase::Discover => "discover",
                crate::freshness::Phase::Read => "read",
                crate::freshness::Phase::Apply => "apply",
                crate::freshness::Phase::Commit => "commit",
            })
            .collect();
        let outcome = match &r.fatal {
            Some(f) => format!("<span class=\"fatal\">{}</span>", escape(f)),
            None if r.warnings.is_empty() => "<span class=\"ok\">ok</span>".to_string(),
            None => format!(
                "<span class=\"warn\">ok, {} warnings</span>",
                r.warnings.len()
            ),
        };
        let _ = writeln!(
            p,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td>\
             <td class=\"num\">{}</td><td>{}</td></tr>",
            utc_time(r.ended_at_ms),
            escape(&r.start_id),
            r.round,
            phases.join(", "),
            r.rows(),
            outcome
        );
    }
    p.push_str("</table>\n");
}

fn recent_errors(p: &mut String, h: &Health) {
    p.push_str("<h2>Recent errors</h2>\n");
    if h.recent_errors.is_empty() {
        p.push_str("<p class=\"ok\">None.</p>\n");
        return;
    }
    p.push_str("<table id=\"recent-errors\"><tr><th>Time</th><th>Round</th><th>Error</th></tr>\n");
    // Newest first.
    for e in h.recent_errors.iter().rev() {
        let _ = writeln!(
            p,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"fatal\">{}</td></tr>",
            utc_time(e.at_ms),
            e.round,
            escape(&e.message)
        );
    }
    p.push_str("</table>\n");
}

fn quarantined(p: &mut String, h: &Health) {
    let _ = writeln!(
        p,
        "<h2>Quarantined files</h2>\n<p id=\"quarantined-total\">{} data file{} quarantined \
         (rows not applied).</p>",
        h.quarantined_files_total,
        if h.quarantined_files_total == 1 {
            ""
        } else {
            "s"
        }
    );
    if h.quarantined.is_empty() {
        return;
    }
    p.push_str("<table id=\"quarantined\"><tr><th>Time</th><th>File</th><th>Reason</th></tr>\n");
    // Newest first.
    for q in h.quarantined.iter().rev() {
        let _ = writeln!(
            p,
            "<tr><td>{}</td><td>{}</td><td class=\"warn\">{}</td></tr>",
            utc_time(q.quarantined_at_ms),
            escape(&q.path),
            escape(&q.reason)
        );
    }
    p.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::freshness::{RecentError, StreamProgress, TableProgress, TableRound};

    const EVIL: &str = "<script>alert(1)</script>";

    fn health() -> Health {
        let mut h = Health::default();
        h.set_ts(
            Ts::from_parts(1_700_000_005_000, 0),
            Some(Ts::from_parts(1_700_000_003_000, 0)),
        );
        h.files_pending = 2;
        let mut r = RoundRecord {
            round: 7,
            started_at_ms: 1_700_000_006_000,
            ended_at_ms: 1_700_000_006_250,
            fatal: Some(format!("corrupt data file `db/{EVIL}/1/CDC1.csv`")),
            warnings: vec!["stray object `x&y.txt`".into(), "second warning".into()],
            ..Default::default()
        };
        r.tables.insert(
            format!("db.{EVIL}"),
            TableRound {
                files: 1,
                rows: 3,
                ddls: 1,
                quarantined: 0,
            },
        );
        h.last_round = Some(r);
        h.tables.insert(
            format!("db.{EVIL}"),
            TableProgress {
                applied_ts: Ts::from_parts(1_700_000_003_000, 0).0,
                version: Some(Ts::from_parts(1_700_000_001_000, 0).0),
                streams: vec![StreamProgress {
                    partition: String::new(),
                    dispatcher: "\"d1\"".into(),
                    version: 1,
                    date: "2023-11-14".into(),
                    file_index: 4,
                    commit_ts: 9,
                }],
                quiet: false,
            },
        );
        h.push_error(RecentError {
            round: 7,
            at_ms: 1_700_000_006_250,
            message: format!("table {EVIL} failed"),
        });
        h
    }

    #[test]
    fn thousands_of_tables_show_the_furthest_behind_and_count_the_rest() {
        let mut h = Health::default();
        let n = MAX_TABLES_SHOWN + 50;
        for i in 0..n {
            h.tables.insert(
                format!("db.t{i:05}"),
                TableProgress {
                    // t00000 is the newest, the last one the furthest behind.
                    applied_ts: (n - i) as u64,
                    ..Default::default()
                },
            );
        }
        let page = render(&h, 0);
        assert!(page.contains("db.t00249"), "the furthest behind is listed");
        assert!(
            page.contains("db.t00050"),
            "the 200th furthest behind is listed"
        );
        assert!(!page.contains("db.t00049"), "the 201st is not");
        assert!(page.contains("50 more tables not shown"));
        let small = render(&health(), 0);
        assert!(!small.contains("more tables not shown"));
    }

    #[test]
    fn page_shows_the_group_members_and_leases_escaped() {
        use crate::group::status::{LeaseView, MemberView};
        let mut h = health();
        h.group = Some(crate::group::GroupView {
            group: format!("g{EVIL}"),
            member: "a".into(),
            lease_ttl_ms: 10_000,
            owned: vec!["db.t1".into()],
            members: vec![
                MemberView {
                    member: "a".into(),
                    live: true,
                    pending: 3,
                    tables: vec!["db.t1".into()],
                },
                MemberView {
                    member: format!("b{EVIL}"),
                    live: false,
                    pending: 0,
                    tables: vec![],
                },
            ],
            leases: vec![
                LeaseView {
                    table: "db.t1".into(),
                    owner: "a".into(),
                    epoch: 4,
                    age_ms: 120,
                    live: true,
                },
                LeaseView {
                    table: "db.t2".into(),
                    owner: String::new(),
                    epoch: 2,
                    age_ms: 9_000,
                    live: false,
                },
            ],
            heartbeat_error: Some(format!("lease store down {EVIL}")),
        });
        let page = render(&h, 0);
        assert!(!page.contains(EVIL), "escaped");
        assert!(page.contains("<h2>Consumer group</h2>"), "{page}");
        assert!(page.contains("this member <b>a</b>, lease TTL 10000 ms, holding 1 lease."));
        assert!(page.contains("<td>a (this)</td><td class=\"ok\">yes</td><td class=\"num\">1</td><td class=\"num\">3</td>"), "{page}");
        assert!(page.contains("<td class=\"warn\">expired</td>"));
        assert!(page.contains("Last heartbeat failed: lease store down &lt;script&gt;"));
        // Oldest renewal first: the free t2 (9 s) before t1 (120 ms).
        let t2 = page
            .find("<td>db.t2</td><td><i>free</i></td>")
            .expect("t2 row");
        let t1 = page.find("<td>db.t1</td><td>a</td>").expect("t1 row");
        assert!(t2 < t1, "{page}");
        // No group: no section.
        assert!(!render(&health(), 0).contains("Consumer group"));
    }

    #[test]
    fn escape_replaces_markup_characters() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain db.t"), "plain db.t");
    }

    #[test]
    fn utc_time_formats_the_epoch_millis() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc_time(1_700_000_003_042), "2023-11-14 22:13:23.042 UTC");
    }

    #[test]
    fn page_shows_freshness_round_tables_and_errors() {
        let h = health();
        let page = render(&h, 1_700_000_007_000);
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
        let applied = Ts::from_parts(1_700_000_003_000, 0).0;
        assert!(page.contains(&format!("{applied} (2023-11-14 22:13:23.000 UTC)")));
        assert!(page.contains("Lag (ms)</th><td class=\"num\">2000<"));
        assert!(page.contains("Files pending</th><td class=\"num\">2<"));
        assert!(page.contains("Last round (7)"));
        assert!(page.contains("(250 ms)"));
        // The fatal error and the warnings are separate elements.
        let fatal = page.find("id=\"fatal\"").expect("fatal shown");
        let warnings = page.find("id=\"warnings\"").expect("warnings shown");
        assert!(fatal < warnings);
        assert!(page.contains("<li class=\"warn\">stray object `x&amp;y.txt`</li>"));
        assert!(page.contains("<li class=\"warn\">second warning</li>"));
        assert!(page.contains("<td class=\"num\">4</td>"));
        assert!(page.contains("&quot;d1&quot;"));
        assert!(page.contains("id=\"recent-errors\""));
    }

    #[test]
    fn page_escapes_names_and_error_texts() {
        let page = render(&health(), 0);
        assert!(!page.contains("<script"), "unescaped markup in\n{page}");
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
        // Last round's table, per-table progress, fatal error, recent error.
        assert!(page.matches(escaped).count() >= 4, "{page}");
    }

    #[test]
    fn empty_health_renders() {
        let page = render(&Health::default(), 0);
        assert!(page.contains("No round has finished yet."));
        assert!(page.contains("No tables yet."));
        assert!(page.contains("0 data files quarantined"));
        assert!(page.ends_with("</html>\n"));
    }

    #[test]
    fn page_lists_quarantined_files_escaped() {
        let mut h = Health::default();
        let key = crate::progress::ProgressKey {
            schema: "db".into(),
            table: EVIL.into(),
            partition: String::new(),
            dispatcher: String::new(),
        };
        h.quarantined_files_total = 1;
        h.quarantined.push(crate::quarantine::QuarantinedFile {
            key,
            version: 1,
            date: String::new(),
            file_index: 2,
            path: format!("db/{EVIL}/1/CDC000002.csv"),
            reason: format!("corrupt object `{EVIL}` at line 1"),
            commit_ts_before: 0,
            quarantined_at_ms: 1_700_000_003_042,
        });
        let page = render(&h, 0);
        assert!(page.contains("1 data file quarantined"), "{page}");
        assert!(page.contains("id=\"quarantined\""));
        assert!(page.contains("2023-11-14 22:13:23.042 UTC"));
        assert!(!page.contains("<script"), "{page}");
        assert_eq!(page.matches("&lt;script&gt;").count(), 2, "{page}");
    }
}
