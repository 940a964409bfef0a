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
//! Blackouts of its namespace). The rows of groups of more than [`OPEN_UP_TO`] tasks start
//! closed, so a rollout of thousands reads as its overview first. When the tasks ran only in the
//! last part of the run (after a long wait for a window), the wait is squeezed into the first
//! fifth of the axis, behind a dashed line.

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
/// Width of a code-change mark; changes closer than this share one.
const MARK: f64 = 3.0;
/// Height of a bar inside its row.
const BAR: f64 = 10.0;
/// Height of the time axis.
const AXIS: f64 = 22.0;
/// Task rows per block of the page (each block is laid out only when it scrolls into view).
const BLOCK: usize = 50;
/// Height of a window lane.
const LANE: f64 = 16.0;
/// Height of a group's overview lane.
const OVERVIEW: f64 = 48.0;
/// Height of one result's lane of ends in the overview.
const ENDED: f64 = 9.0;
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
section.group { margin: 10px 0 14px; border: 1px solid #d8dde3; border-radius: 4px; padding: 6px 8px; }
h3 { font-size: 14px; margin: 0 0 2px; }
h3 .counts { font-weight: 400; color: #444; }
summary { cursor: pointer; color: #1565c0; }
.overview { margin: 4px 0 0; }
.rows { overflow-x: auto; }
.rows svg { display: block; }
.block { content-visibility: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #1b1f24; }
svg text.axis { fill: #555; }
svg text.code { font-size: 10px; fill: #444; }
svg .tick { stroke: #c9ced4; stroke-width: 1; }
svg .break { stroke: #555; stroke-width: 1.5; stroke-dasharray: 4 3; }
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
    let first_start = report
        .tasks
        .iter()
        .filter_map(|t| t.started_at.as_deref().and_then(parse))
        .min();
    let axis = Axis::new(start, end, first_start);
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

/// Maps times onto the plot: linearly, or, when the tasks ran only in the last part of the run
/// (after a long wait for a window, see [`SQUEEZE_BELOW`]), in two linear parts, the wait squeezed into the first
/// fifth of the plot so the execution stays readable.
struct Axis {
    start: Timestamp,
    end: Timestamp,
    parts: Vec<Part>,
}

/// One linear part of the axis.
struct Part {
    from: Timestamp,
    to: Timestamp,
    x0: f64,
    x1: f64,
    max_ticks: i64,
}

/// The wait before the first start is squeezed when the tasks ran for less than this share of
/// the run.
const SQUEEZE_BELOW: f64 = 0.4;
/// The share of the plot the wait before the first start gets when it is squeezed.
const SQUEEZED: f64 = 0.2;

impl Axis {
    fn new(start: Timestamp, end: Timestamp, first_start: Option<Timestamp>) -> Self {
        let span = end.duration_since(start).max(MIN_SPAN);
        let end = start.checked_add(span).unwrap_or(end);
        let running = first_start.map(|f| end.duration_since(f));
        let squeeze = first_start.zip(running).filter(|(f, running)| {
            *f > start && running.as_secs_f64() < span.as_secs_f64() * SQUEEZE_BELOW
        });
        let parts = match squeeze {
            Some((first, _)) => vec![
                Part {
                    from: start,
                    to: first,
                    x0: LABEL,
                    x1: LABEL + SQUEEZED * PLOT,
                    max_ticks: 3,
                },
                Part {
                    from: first,
                    to: end,
                    x0: LABEL + SQUEEZED * PLOT,
                    x1: LABEL + PLOT,
                    max_ticks: 9,
                },
            ],
            None => vec![Part {
                from: start,
                to: end,
                x0: LABEL,
                x1: LABEL + PLOT,
                max_ticks: 12,
            }],
        };
        Self { start, end, parts }
    }

    /// The x of `t`, clamped to the plot.
    fn x(&self, t: Timestamp) -> f64 {
        let part = self
            .parts
            .iter()
            .find(|p| t < p.to)
            .or(self.parts.last())
            .expect("an axis has a part");
        let span = part.to.duration_since(part.from).as_secs_f64().max(1.0);
        let offset = t.duration_since(part.from).as_secs_f64() / span;
        part.x0 + offset.clamp(0.0, 1.0) * (part.x1 - part.x0)
    }

    /// The time at `x` (the inverse of [`Axis::x`] on the plot).
    fn time_at(&self, x: f64) -> Timestamp {
        let part = self
            .parts
            .iter()
            .find(|p| x < p.x1)
            .or(self.parts.last())
            .expect("an axis has a part");
        let share = ((x - part.x0) / (part.x1 - part.x0)).clamp(0.0, 1.0);
        let span = part.to.duration_since(part.from).as_secs_f64();
        part.from
            .checked_add(SignedDuration::from_secs_f64(share * span))
            .unwrap_or(part.to)
    }

    /// Where the scale changes, if it does.
    fn squeezed_until(&self) -> Option<f64> {
        (self.parts.len() > 1).then(|| self.parts[0].x1)
    }

    /// Tick times and labels, per part: a round step that gives at most its number of ticks.
    fn ticks(&self) -> Vec<(Timestamp, String)> {
        const STEPS: [i64; 15] = [
            10, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
        ];
        let mut ticks = Vec::new();
        let mut last_day = None;
        for part in &self.parts {
            let span = part.to.duration_since(part.from).as_secs();
            let step = STEPS
                .iter()
                .copied()
                .find(|s| span / s < part.max_ticks)
                .unwrap_or(604_800);
            let mut at = (part.from.as_second() + step - 1).div_euclid(step) * step;
            while at < part.to.as_second() || (at == part.to.as_second() && part.to == self.end) {
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
        }
        ticks
    }
}

/// Draws the time axis' labels at `y` and its lines down to `bottom`.
fn draw_axis(svg: &mut String, axis: &Axis, y: f64, bottom: f64) {
    // A label needs this much room; closer ticks keep their line only.
    const LABEL_ROOM: f64 = 72.0;
    let mut last_label = f64::NEG_INFINITY;
    let break_at = axis.squeezed_until();
    for (t, label) in axis.ticks() {
        let x = axis.x(t);
        let crowds_break = break_at.is_some_and(|b| x < b && b - x < LABEL_ROOM);
        let at_edge = x + 40.0 > LABEL + PLOT;
        if x - last_label >= LABEL_ROOM && !crowds_break && !at_edge {
            let _ = write!(
                svg,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 2.0,
                y + AXIS - 9.0,
                esc(&label)
            );
            last_label = x;
        }
    }
    draw_grid(svg, axis, y + AXIS - 6.0, bottom);
}

/// The axis' tick lines from `top` to `bottom`, and a dashed line where the scale changes.
fn draw_grid(svg: &mut String, axis: &Axis, top: f64, bottom: f64) {
    for (t, _) in axis.ticks() {
        let x = axis.x(t);
        let _ = write!(
            svg,
            "<line class=\"tick\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"/>"
        );
    }
    if let Some(x) = axis.squeezed_until() {
        let _ = write!(
            svg,
            "<line class=\"break\" x1=\"{x:.1}\" y1=\"{top:.1}\" x2=\"{x:.1}\" y2=\"{bottom:.1}\"><title>the scale changes here: the wait before the first start is squeezed into the part on the left</title></line>"
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

/// A lane per window from `top` down, each showing its occurrences.
fn lanes(svg: &mut String, axis: &Axis, windows: &[&WindowReport], top: f64) {
    for (i, w) in windows.iter().enumerate() {
        let y = top + LANE * i as f64;
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
    }
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
        "<section class=\"group\">\n<h3>{} <span class=\"counts\">— {} tasks: {}{}</span></h3>",
        esc(parent),
        rows.len(),
        esc(&counts),
        esc(&state)
    );
    overview(page, axis, rows, windows);
    let _ = writeln!(
        page,
        "<details{open}>\n<summary>{} task rows, by start</summary>",
        rows.len()
    );

    // The axis and the window lanes, then the rows in blocks that the browser lays out only
    // when they scroll into view.
    let width = LABEL + PLOT + 10.0;
    let head = AXIS + LANE * windows.len() as f64;
    let mut svg = String::with_capacity(rows.len() * 1100);
    let _ = write!(
        svg,
        "<div class=\"rows\"><svg width=\"{width:.0}\" height=\"{head:.0}\" role=\"img\" aria-label=\"time axis and windows\">"
    );
    draw_axis(&mut svg, axis, 0.0, head);
    lanes(&mut svg, axis, windows, AXIS);
    svg.push_str("</svg>");
    for block in rows.chunks(BLOCK) {
        let height = ROW * block.len() as f64;
        let _ = write!(
            svg,
            "<div class=\"block\" style=\"contain-intrinsic-size: auto {height:.0}px\"><svg width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"tasks of {}\">",
            esc(parent)
        );
        draw_grid(&mut svg, axis, 0.0, height);
        shade(&mut svg, axis, windows, 0.0, height);
        for (i, row) in block.iter().enumerate() {
            task_row(&mut svg, axis, row, ROW * i as f64);
        }
        svg.push_str("</svg></div>");
    }
    svg.push_str("</div>\n</details>\n</section>\n");
    page.push_str(&svg);
}

/// A lane of how many of the group's tasks run at each moment, with the ends by result below.
fn overview(page: &mut String, axis: &Axis, rows: &[Row<'_>], windows: &[&WindowReport]) {
    let width = PLOT / BUCKETS as f64;
    // Columns follow the axis (which may be in two parts), not the clock. A column holds the
    // average number of tasks running over its stretch of time.
    let mut running = [0.0f64; BUCKETS];
    let mut ended: Vec<(&str, [usize; BUCKETS])> =
        RESULTS[..4].iter().map(|r| (*r, [0; BUCKETS])).collect();
    let index = |x: f64| {
        let column = (x - LABEL) / width;
        (column.max(0.0) as usize).min(BUCKETS - 1)
    };
    let mut changes = Vec::new();
    for row in rows {
        if let Some(started) = row.started {
            let finished = row.finished.unwrap_or(axis.end);
            changes.push((started, 1i64));
            changes.push((finished, -1));
            let (from, to) = (axis.x(started), axis.x(finished));
            for (i, slot) in running
                .iter_mut()
                .enumerate()
                .take(index(to) + 1)
                .skip(index(from))
            {
                let (left, right) = (LABEL + width * i as f64, LABEL + width * (i + 1) as f64);
                *slot += (to.min(right) - from.max(left)).max(0.0) / width;
            }
        }
        let lane = ended.iter_mut().find(|(r, _)| *r == row.task.result);
        if let (Some(finished), Some((_, counts))) = (row.finished, lane) {
            counts[index(axis.x(finished))] += 1;
        }
    }
    // The true peak: ends before starts at the same instant.
    changes.sort();
    let peak = changes
        .iter()
        .scan(0i64, |now, (_, change)| {
            *now += change;
            Some(*now)
        })
        .max()
        .unwrap_or(0);
    let tallest = running.iter().copied().fold(0.0f64, f64::max).max(1.0);
    ended.retain(|(_, counts)| counts.iter().any(|n| *n > 0));
    let height = AXIS + OVERVIEW + ENDED * ended.len() as f64 + 2.0;
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
        AXIS + OVERVIEW + ENDED - 1.0
    );
    for (i, n) in running.iter().enumerate().filter(|(_, n)| **n > 0.0) {
        let h = (OVERVIEW - 8.0) * n / tallest;
        let x = LABEL + width * i as f64;
        let _ = write!(
            page,
            "<rect class=\"running\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{width:.2}\" height=\"{h:.1}\"><title>{n:.1} running on average from {} to {}</title></rect>",
            AXIS + OVERVIEW - 4.0 - h,
            rfc3339(axis.time_at(x)),
            rfc3339(axis.time_at(x + width))
        );
    }
    for (lane, (result, counts)) in ended.iter().enumerate() {
        let y = AXIS + OVERVIEW + ENDED * lane as f64;
        let _ = write!(
            page,
            "<text class=\"code\" x=\"{LABEL:.1}\" y=\"{:.1}\" text-anchor=\"end\" dx=\"-4\">{}</text>",
            y + ENDED - 1.0,
            result.to_lowercase()
        );
        for (i, n) in counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let _ = write!(
                page,
                "<rect class=\"{result}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.2}\" height=\"{:.1}\"><title>{n} {} around {}</title></rect>",
                LABEL + width * i as f64,
                y + 1.0,
                width.max(2.0),
                ENDED - 2.0,
                result.to_lowercase(),
                rfc3339(axis.time_at(LABEL + width * i as f64))
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
    if result != "Succeeded" {
        // Where the row has room, the code that ended (or holds) the task, beside its bar.
        const ROOM: f64 = 300.0;
        let at = if LABEL + PLOT - x2 > ROOM {
            Some((x2.max(x1) + 6.0, "start"))
        } else if x0 - LABEL > ROOM {
            Some((x0 - 6.0, "end"))
        } else {
            None
        };
        if let Some((x, anchor)) = at {
            let _ = write!(
                svg,
                "<text class=\"code\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                y + BAR,
                esc(code)
            );
        }
    }
    svg.push_str("</g>");
    // One mark per spot: code changes closer than a mark's width share it, and its hover text
    // lists them all.
    let mut marks: Vec<(f64, String)> = Vec::new();
    for entry in &task.history {
        let x = axis.x(entry.at.0);
        let line = format!("{} at {}", entry.code, rfc3339(entry.at.0));
        match marks.last_mut() {
            Some((at, text)) if x - *at < MARK => {
                text.push('\n');
                text.push_str(&line);
            }
            _ => marks.push((x, line)),
        }
    }
    for (x, text) in marks {
        let _ = write!(
            svg,
            "<rect class=\"mark\" x=\"{:.1}\" y=\"{:.1}\" width=\"{MARK}\" height=\"{:.1}\"><title>{}</title></rect>",
            x - MARK / 2.0,
            y + 1.0,
            ROW - 2.0,
            esc(&text)
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
