//! `upkeep simulate -o html`: the run as one self-contained page. Invariants: no script, no
//! font, image or style sheet from anywhere (inline CSS and SVG only), so the page opens with no
//! network; every name and message is escaped; the output is a function of the report alone
//! (the same report gives the same bytes).
//!
//! The page: a header with the run's span and counts, the summary per resource, the windows,
//! then the timeline grouped by parent resource. Each group shows an overview lane (how many of
//! its tasks run at each moment, and when they end by result) and, in a `<details>` element, a
//! row per task labelled with its target: a bar from its creation to its end (lighter while
//! queued, solid once started) coloured by result, a mark at each code change with the code and
//! time as hover text, and its windows shaded (the Maintenance windows it names and the
//! Blackouts of its namespace). Groups of more than [`OPEN_UP_TO`] tasks start closed, so a
//! rollout of thousands reads as its overview first.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};

use super::{Report, ResourceReport, TaskReport, WindowReport, rfc3339};
use crate::api::maintenance_window::WindowType;

/// Groups with at most this many tasks start open.
const OPEN_UP_TO: usize = 100;
/// Width of the label column, in pixels.
const LABEL: f64 = 190.0;
/// Width of the time axis, in pixels.
const PLOT: f64 = 1000.0;
/// Height of a task row.
const ROW: f64 = 16.0;
/// Height of a bar inside its row.
const BAR: f64 = 10.0;
/// Height of the time axis.
const AXIS: f64 = 22.0;
/// Height of a window lane.
const LANE: f64 = 12.0;
/// Height of a group's overview lane.
const OVERVIEW: f64 = 48.0;
/// Columns of the overview lane.
const BUCKETS: usize = 200;
/// The shortest span the axis shows (a run that ends at once still gets a readable axis).
const MIN_SPAN: SignedDuration = SignedDuration::from_secs(60);

const STYLE: &str = r#"
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px 24px; color: #1b1f24; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 20px 0 6px; }
p.run { margin: 0 0 8px; color: #444; }
table { border-collapse: collapse; margin: 4px 0; }
th, td { text-align: left; padding: 3px 10px 3px 0; vertical-align: top; border-bottom: 1px solid #e3e6ea; }
th { font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 12px; height: 10px; margin-right: 4px; vertical-align: -1px; }
details { margin: 10px 0 14px; border: 1px solid #d8dde3; border-radius: 4px; padding: 6px 8px; }
summary { cursor: pointer; font-weight: 600; }
summary .counts { font-weight: 400; color: #444; }
.overview { margin: 4px 0 0; }
.rows { overflow-x: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #1b1f24; }
svg text.axis { fill: #555; }
svg .tick { stroke: #c9ced4; stroke-width: 1; }
svg .mark { fill: #1b1f24; fill-opacity: 0.55; }
svg .mark:hover { fill-opacity: 1; }
svg .Succeeded { fill: #2e7d32; } svg .Failed { fill: #c62828; } svg .Skipped { fill: #8d959e; }
svg .Canceled { fill: #ef8c00; } svg .InProgress { fill: #1565c0; }
svg .queued { fill-opacity: 0.35; }
svg .Maintenance { fill: #2e7d32; fill-opacity: 0.09; } svg .Blackout { fill: #c62828; fill-opacity: 0.13; }
svg .lane.Maintenance { fill-opacity: 0.45; } svg .lane.Blackout { fill-opacity: 0.55; }
svg .running { fill: #1565c0; fill-opacity: 0.7; }
.warn { color: #c62828; font-weight: 600; }
"#;

/// The result names, in the legend's order.
const RESULTS: [&str; 5] = ["Succeeded", "Failed", "Skipped", "Canceled", "InProgress"];

/// Renders the page.
pub(super) fn render(report: &Report) -> String {
    let start = parse(&report.start).unwrap_or(Timestamp::UNIX_EPOCH);
    let end = parse(&report.end).unwrap_or(start);
    let axis = Axis::new(start, end);
    let mut page = String::with_capacity(4096 + report.tasks.len() * 1200);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width\">\n<title>upkeep simulate: {} → {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&report.start),
        esc(&report.end)
    );
    header(&mut page, report);
    resources(&mut page, &report.resources);
    windows(&mut page, &report.windows);
    page.push_str("<h2>Timeline</h2>\n");
    for (parent, tasks) in groups(&report.tasks) {
        let resource = report
            .resources
            .iter()
            .find(|r| format!("{}/{}/{}", r.kind, r.namespace, r.name) == parent);
        let shaded = gating(resource, parent, &report.windows);
        group(&mut page, &axis, parent, resource, &tasks, &shaded);
    }
    if report.tasks.is_empty() {
        page.push_str("<p>No tasks were created.</p>\n");
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn header(page: &mut String, report: &Report) {
    let mut by_result: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &report.tasks {
        *by_result.entry(t.result.as_str()).or_default() += 1;
    }
    let counts = RESULTS
        .iter()
        .filter_map(|r| {
            by_result
                .get(r)
                .map(|n| format!("{n} {}", r.to_lowercase()))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        page,
        "<h1>Rollout timeline</h1>\n<p class=\"run\">simulated {} → {} (virtual time, UTC) · {} tasks{} · {} API writes by the controllers</p>",
        esc(&report.start),
        esc(&report.end),
        report.tasks.len(),
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {counts}")
        },
        report.api_writes
    );
    if !report.complete() {
        page.push_str("<p class=\"warn\">Not every task ended within the horizon.</p>\n");
    }
    page.push_str("<p class=\"legend\">");
    for r in RESULTS {
        let _ = write!(
            page,
            "<span><svg width=\"12\" height=\"10\"><rect class=\"{r}\" width=\"12\" height=\"10\"/></svg> {r}</span>"
        );
    }
    page.push_str("<span><svg width=\"12\" height=\"10\"><rect class=\"InProgress queued\" width=\"12\" height=\"10\"/></svg> queued (lighter)</span><span><svg width=\"4\" height=\"10\"><rect class=\"mark\" width=\"3\" height=\"10\"/></svg> code change (hover for code and time)</span><span><svg width=\"12\" height=\"10\"><rect class=\"lane Maintenance\" width=\"12\" height=\"10\"/></svg> maintenance window</span><span><svg width=\"12\" height=\"10\"><rect class=\"lane Blackout\" width=\"12\" height=\"10\"/></svg> blackout</span></p>\n");
}

fn resources(page: &mut String, resources: &[ResourceReport]) {
    if resources.is_empty() {
        return;
    }
    page.push_str("<h2>Resources</h2>\n<table>\n<tr><th>resource</th><th>code</th><th>targets</th><th>succeeded</th><th>failed</th><th>running</th><th>waiting</th><th>state</th></tr>\n");
    for r in resources {
        let state = r
            .conditions
            .iter()
            .find(|c| c.status == "True")
            .map(|c| format!("{}: {}", c.type_, c.message))
            .unwrap_or_default();
        let s = &r.summary;
        let _ = writeln!(
            page,
            "<tr><td>{}/{}/{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&r.kind),
            esc(&r.namespace),
            esc(&r.name),
            esc(r.code.as_deref().unwrap_or("")),
            s.total,
            s.succeeded,
            s.failed,
            s.running,
            s.waiting,
            esc(&state)
        );
    }
    page.push_str("</table>\n");
}

fn windows(page: &mut String, windows: &[WindowReport]) {
    if windows.is_empty() {
        return;
    }
    page.push_str("<h2>Windows</h2>\n<table>\n<tr><th>window</th><th>type</th><th>open during the run</th></tr>\n");
    for w in windows {
        let open = if w.occurrences.is_empty() {
            "never".to_string()
        } else {
            w.occurrences
                .iter()
                .take(5)
                .map(|o| format!("{} → {}", rfc3339(o.start), rfc3339(o.end)))
                .collect::<Vec<_>>()
                .join("; ")
                + &if w.occurrences.len() > 5 {
                    format!("; and {} more", w.occurrences.len() - 5)
                } else {
                    String::new()
                }
        };
        let _ = writeln!(
            page,
            "<tr><td>{}/{}</td><td>{:?}</td><td>{}</td></tr>",
            esc(&w.namespace),
            esc(&w.name),
            w.kind,
            esc(&open)
        );
    }
    page.push_str("</table>\n");
}

/// Tasks by parent, in the report's order of parents; each group ordered by when its tasks
/// started (queued ones last), then by creation and target.
fn groups(tasks: &[TaskReport]) -> Vec<(&str, Vec<Row<'_>>)> {
    let mut groups: Vec<(&str, Vec<Row<'_>>)> = Vec::new();
    for task in tasks {
        let row = Row::of(task);
        match groups.last_mut() {
            Some((parent, rows)) if *parent == task.parent => rows.push(row),
            _ => groups.push((task.parent.as_str(), vec![row])),
        }
    }
    for (_, rows) in &mut groups {
        rows.sort_by(|a, b| {
            (a.started.is_none(), a.started, a.created, &a.task.target).cmp(&(
                b.started.is_none(),
                b.started,
                b.created,
                &b.task.target,
            ))
        });
    }
    groups
}

/// The windows shaded in a parent's group: the Maintenance windows it names, and every Blackout
/// of its namespace.
fn gating<'a>(
    resource: Option<&ResourceReport>,
    parent: &str,
    windows: &'a [WindowReport],
) -> Vec<&'a WindowReport> {
    let namespace = parent.split('/').nth(1).unwrap_or_default();
    let named = resource
        .map(|r| r.maintenance_windows.as_slice())
        .unwrap_or_default();
    windows
        .iter()
        .filter(|w| {
            w.namespace == namespace && (w.kind == WindowType::Blackout || named.contains(&w.name))
        })
        .collect()
}

/// One task as drawn.
struct Row<'a> {
    task: &'a TaskReport,
    created: Option<Timestamp>,
    started: Option<Timestamp>,
    finished: Option<Timestamp>,
}

impl<'a> Row<'a> {
    fn of(task: &'a TaskReport) -> Self {
        Self {
            task,
            created: task.history.first().map(|h| h.at.0),
            started: task.started_at.as_deref().and_then(parse),
            finished: task.finished_at.as_deref().and_then(parse),
        }
    }
}

/// Maps times onto the plot.
struct Axis {
    start: Timestamp,
    end: Timestamp,
    span: f64,
}

impl Axis {
    fn new(start: Timestamp, end: Timestamp) -> Self {
        let span = end.duration_since(start).max(MIN_SPAN);
        Self {
            start,
            end: start.checked_add(span).unwrap_or(end),
            span: span.as_secs_f64(),
        }
    }

    /// The x of `t`, clamped to the plot.
    fn x(&self, t: Timestamp) -> f64 {
        let offset = t.duration_since(self.start).as_secs_f64() / self.span;
        LABEL + offset.clamp(0.0, 1.0) * PLOT
    }

    /// Tick times and labels: a step that gives five to twelve ticks.
    fn ticks(&self) -> Vec<(Timestamp, String)> {
        const STEPS: [i64; 14] = [
            10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800,
        ];
        let span = self.span as i64;
        let step = STEPS
            .iter()
            .copied()
            .find(|s| span / s <= 12)
            .unwrap_or(604_800);
        let first = (self.start.as_second() + step - 1).div_euclid(step) * step;
        let mut ticks = Vec::new();
        let mut at = first;
        let mut last_day = None;
        while at <= self.end.as_second() {
            if let Ok(t) = Timestamp::from_second(at) {
                let day = t.strftime("%Y-%m-%d").to_string();
                let label = if last_day.as_ref() != Some(&day) {
                    t.strftime("%m-%d %H:%M").to_string()
                } else if step < 60 {
                    t.strftime("%H:%M:%S").to_string()
                } else {
                    t.strftime("%H:%M").to_string()
                };
                last_day = Some(day);
                ticks.push((t, label));
            }
            at += step;
        }
        ticks
    }
}

/// Draws the time axis at `y` and the tick lines down to `bottom`.
fn draw_axis(svg: &mut String, axis: &Axis, y: f64, bottom: f64) {
    for (t, label) in axis.ticks() {
        let x = axis.x(t);
        let _ = write!(
            svg,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/><text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            y + AXIS - 6.0,
            x + 2.0,
            y + AXIS - 9.0,
            esc(&label)
        );
    }
}

/// Shades the occurrences of `windows` from `top` to `bottom`.
fn shade(svg: &mut String, axis: &Axis, windows: &[&WindowReport], top: f64, bottom: f64) {
    for w in windows {
        for o in &w.occurrences {
            let (x1, x2) = (axis.x(o.start), axis.x(o.end));
            let _ = write!(
                svg,
                "<rect class=\"{:?}\" x=\"{x1:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{:?} window {}: {} → {}</title></rect>",
                w.kind,
                (x2 - x1).max(1.0),
                bottom - top,
                w.kind,
                esc(&w.name),
                rfc3339(o.start),
                rfc3339(o.end)
            );
        }
    }
}

/// The lanes naming each window at `top`; returns the y below them.
fn lanes(svg: &mut String, axis: &Axis, windows: &[&WindowReport], top: f64) -> f64 {
    let mut y = top;
    for w in windows {
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\">{:?} {}</text>",
            y + LANE - 2.0,
            w.kind,
            esc(&short(&w.name, 24))
        );
        for o in &w.occurrences {
            let (x1, x2) = (axis.x(o.start), axis.x(o.end));
            let _ = write!(
                svg,
                "<rect class=\"lane {:?}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{:?} window {}: {} → {}</title></rect>",
                w.kind,
                y + 1.0,
                (x2 - x1).max(1.0),
                LANE - 2.0,
                w.kind,
                esc(&w.name),
                rfc3339(o.start),
                rfc3339(o.end)
            );
        }
        y += LANE;
    }
    y
}

fn group(
    page: &mut String,
    axis: &Axis,
    parent: &str,
    resource: Option<&ResourceReport>,
    rows: &[Row<'_>],
    windows: &[&WindowReport],
) {
    let mut by_result: BTreeMap<&str, usize> = BTreeMap::new();
    for r in rows {
        *by_result.entry(r.task.result.as_str()).or_default() += 1;
    }
    let counts = RESULTS
        .iter()
        .filter_map(|r| {
            by_result
                .get(r)
                .map(|n| format!("{n} {}", r.to_lowercase()))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let state = resource
        .and_then(|r| r.conditions.iter().find(|c| c.status == "True"))
        .map(|c| format!(" · {}: {}", c.type_, c.message))
        .unwrap_or_default();
    let open = if rows.len() <= OPEN_UP_TO {
        " open"
    } else {
        ""
    };
    let _ = writeln!(
        page,
        "<details{open}>\n<summary>{} <span class=\"counts\">— {} tasks: {}{}</span></summary>",
        esc(parent),
        rows.len(),
        esc(&counts),
        esc(&state)
    );
    overview(page, axis, rows, windows);

    let lanes_height = LANE * windows.len() as f64;
    let height = AXIS + lanes_height + ROW * rows.len() as f64 + 4.0;
    let mut svg = String::with_capacity(rows.len() * 1100);
    let _ = write!(
        svg,
        "<div class=\"rows\"><svg width=\"{:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"tasks of {}\">",
        LABEL + PLOT + 10.0,
        esc(parent)
    );
    draw_axis(&mut svg, axis, 0.0, height);
    let top = lanes(&mut svg, axis, windows, AXIS);
    shade(&mut svg, axis, windows, top, height);
    for (i, row) in rows.iter().enumerate() {
        task_row(&mut svg, axis, row, top + ROW * i as f64);
    }
    svg.push_str("</svg></div>\n</details>\n");
    page.push_str(&svg);
}

/// A lane of how many of the group's tasks run at each moment, with the ends by result below.
fn overview(page: &mut String, axis: &Axis, rows: &[Row<'_>], windows: &[&WindowReport]) {
    let bucket = axis.span / BUCKETS as f64;
    let mut running = [0usize; BUCKETS];
    let mut ended: BTreeMap<&str, [usize; BUCKETS]> = BTreeMap::new();
    let index = |t: Timestamp| {
        let offset = t.duration_since(axis.start).as_secs_f64() / bucket;
        (offset.max(0.0) as usize).min(BUCKETS - 1)
    };
    for row in rows {
        if let Some(started) = row.started {
            let last = row.finished.map_or(BUCKETS - 1, index);
            for slot in &mut running[index(started)..=last.max(index(started))] {
                *slot += 1;
            }
        }
        if let Some(finished) = row.finished {
            ended
                .entry(row.task.result.as_str())
                .or_insert([0; BUCKETS])[index(finished)] += 1;
        }
    }
    let peak = running.iter().copied().max().unwrap_or(0).max(1);
    let height = AXIS + OVERVIEW + 10.0;
    let _ = write!(
        page,
        "<svg class=\"overview\" width=\"{:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"overview\">",
        LABEL + PLOT + 10.0
    );
    draw_axis(page, axis, 0.0, height);
    shade(page, axis, windows, AXIS, height);
    let _ = write!(
        page,
        "<text x=\"4\" y=\"{:.1}\">running (peak {peak})</text><text x=\"4\" y=\"{:.1}\">ended</text>",
        AXIS + 14.0,
        AXIS + OVERVIEW + 8.0
    );
    let width = PLOT / BUCKETS as f64;
    for (i, n) in running.iter().enumerate().filter(|(_, n)| **n > 0) {
        let h = (OVERVIEW - 8.0) * *n as f64 / peak as f64;
        let _ = write!(
            page,
            "<rect class=\"running\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{h:.1}\"><title>{n} running around {}</title></rect>",
            LABEL + width * i as f64,
            AXIS + OVERVIEW - 4.0 - h,
            width,
            rfc3339(axis.start + SignedDuration::from_secs_f64(bucket * i as f64))
        );
    }
    for (result, counts) in &ended {
        for (i, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let _ = write!(
                page,
                "<rect class=\"{result}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"6\"><title>{n} {} around {}</title></rect>",
                LABEL + width * i as f64,
                AXIS + OVERVIEW + 2.0,
                width.max(2.0),
                result.to_lowercase(),
                rfc3339(axis.start + SignedDuration::from_secs_f64(bucket * i as f64))
            );
        }
    }
    page.push_str("</svg>\n");
}

fn task_row(svg: &mut String, axis: &Axis, row: &Row<'_>, y: f64) {
    let task = row.task;
    let result = task.result.as_str();
    let code = task.code.as_deref().unwrap_or("-");
    let created = row.created.unwrap_or(axis.start);
    let last = row.finished.unwrap_or(axis.end);
    let times = |label: &str, t: Option<Timestamp>| {
        t.map(|t| format!("; {label} {}", rfc3339(t)))
            .unwrap_or_default()
    };
    let title = format!(
        "{}: {code} ({result}){}{}{}{}",
        task.target,
        times("created", row.created),
        times("started", row.started),
        times("finished", row.finished),
        task.incident_id
            .as_deref()
            .map(|i| format!("; incident {i}"))
            .unwrap_or_default()
    );
    let _ = write!(
        svg,
        "<g><title>{}</title><text x=\"4\" y=\"{:.1}\">{}</text>",
        esc(&title),
        y + BAR,
        esc(&short(&task.target, 28))
    );
    let bar_y = y + (ROW - BAR) / 2.0;
    let started = row.started.unwrap_or(last).max(created);
    let (x0, x1, x2) = (axis.x(created), axis.x(started), axis.x(last.max(started)));
    if x1 > x0 {
        let _ = write!(
            svg,
            "<rect class=\"{result} queued\" x=\"{x0:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{BAR}\"/>",
            x1 - x0
        );
    }
    if row.started.is_some() || x2 <= x0 {
        let _ = write!(
            svg,
            "<rect class=\"{result}\" x=\"{x1:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{BAR}\"/>",
            (x2 - x1).max(2.0)
        );
    }
    svg.push_str("</g>");
    for entry in &task.history {
        let x = axis.x(entry.at.0);
        let _ = write!(
            svg,
            "<rect class=\"mark\" x=\"{:.1}\" y=\"{:.1}\" width=\"3\" height=\"{:.1}\"><title>{} at {}</title></rect>",
            x - 1.5,
            y + 1.0,
            ROW - 2.0,
            esc(&entry.code),
            rfc3339(entry.at.0)
        );
    }
}

fn parse(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

/// `text`, cut to `max` characters with an ellipsis.
fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        text.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

#[cfg(test)]
mod tests;
