//! The results: a markdown table, the targets, and an SVG chart of throughput
//! and p99 per scenario against the empty-RPC limit.

use std::fmt::Write as _;

use crate::{background::FreshRun, crash::CrashRun, stats::Stats};

/// One measured scenario at one concurrency.
pub struct Row {
    pub scenario: String,
    pub concurrency: usize,
    pub stats: Stats,
}

/// Everything a run measured.
#[derive(Default)]
pub struct Results {
    pub rows: Vec<Row>,
    /// (callers, rounds, p50 and p99 added latency in ms, refreshes per round).
    pub storm: Vec<(usize, usize, f64, f64, Vec<usize>)>,
    /// (stored, hot, peak RSS MiB, start to SERVING ms with them stored).
    pub rss: Option<(usize, usize, f64, f64)>,
    /// Start to SERVING on SQLite, ms: first start (migrating), median restart.
    pub startup: Option<(f64, f64)>,
    /// (7) per backend.
    pub crash: Vec<CrashRun>,
    /// (8) and (9) per configuration.
    pub fresh: Vec<FreshRun>,
}

pub const EMPTY: &str = "(1) empty RPC (limit)";

impl Results {
    fn baseline(&self, concurrency: usize) -> Option<&Stats> {
        self.rows
            .iter()
            .find(|r| r.scenario == EMPTY && r.concurrency == concurrency)
            .map(|r| &r.stats)
    }

    fn find(&self, scenario: &str, concurrency: usize) -> Option<&Stats> {
        self.rows
            .iter()
            .find(|r| r.scenario.starts_with(scenario) && r.concurrency == concurrency)
            .map(|r| &r.stats)
    }

    /// The results table in markdown.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| scenario | conc. | req/s | p50 µs | p99 µs | p99.9 µs | errors | req/s vs (1) | p99 vs (1) |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &self.rows {
            let s = &row.stats;
            let (ratio_rps, ratio_p99) = match self.baseline(row.concurrency) {
                Some(b) => (
                    format!("{:.2}x", s.rps() / b.rps()),
                    format!("{:.2}x", s.quantile_us(0.99) / b.quantile_us(0.99)),
                ),
                None => ("–".into(), "–".into()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
                row.scenario,
                row.concurrency,
                s.rps(),
                s.quantile_us(0.5),
                s.quantile_us(0.99),
                s.quantile_us(0.999),
                s.errors,
                ratio_rps,
                ratio_p99
            );
        }
        if !self.storm.is_empty() {
            out.push_str(
                "\n| (6) refresh storm: callers | rounds | added latency p50 ms | added latency p99 ms | refreshes the provider saw per round |\n\
                 |---:|---:|---:|---:|---|\n",
            );
            for (callers, rounds, p50, p99, refreshes) in &self.storm {
                let _ = writeln!(
                    out,
                    "| {callers} | {rounds} | {p50:.2} | {p99:.2} | {refreshes:?} |"
                );
            }
        }
        if let Some((stored, hot, rss, start)) = self.rss {
            let _ = write!(
                out,
                "\nPeak RSS with {stored} stored connections, {hot} hot: **{rss:.1} MiB** (start to SERVING with them stored: {start:.0} ms).\n"
            );
        }
        if let Some((first, restart)) = self.startup {
            let _ = writeln!(
                out,
                "Start to SERVING on SQLite: **{restart:.0} ms** (median restart; first start with migrations {first:.0} ms)."
            );
        }
        if !self.crash.is_empty() {
            out.push_str(&crate::crash::table(&self.crash));
        }
        if !self.fresh.is_empty() {
            out.push_str(&crate::background::table(&self.fresh));
        }
        out
    }

    /// Each target with its measured value and whether it was met.
    pub fn targets(&self) -> Vec<(String, bool)> {
        let mut out = Vec::new();
        if let (Some(b), Some(c)) = (self.baseline(64), self.find("(2)", 64)) {
            let rps = c.rps() / b.rps();
            let p99 = c.quantile_us(0.99) / b.quantile_us(0.99);
            out.push((
                format!("(2) cached ≥ 0.8x empty RPC throughput at c=64: {rps:.2}x"),
                rps >= 0.8,
            ));
            out.push((
                format!("(2) cached p99 ≤ 1.5x empty RPC at c=64: {p99:.2}x"),
                p99 <= 1.5,
            ));
        }
        if let (Some(b), Some(m)) = (
            self.baseline(64),
            self.find("(3) GetAccessToken cache miss, SQLite", 64),
        ) {
            let r = m.rps() / b.rps();
            out.push((
                format!("(3) cache miss on SQLite ≥ 0.3x empty RPC at c=64: {r:.2}x"),
                r >= 0.3,
            ));
        }
        let concurrencies: Vec<usize> = self
            .rows
            .iter()
            .filter(|r| r.scenario == EMPTY)
            .map(|r| r.concurrency)
            .collect();
        for c in concurrencies {
            if let (Some(cached), Some(direct)) = (self.find("(2)", c), self.find("(4)", c)) {
                let faster = cached.rps() > direct.rps()
                    && cached.quantile_us(0.5) < direct.quantile_us(0.5);
                out.push((
                    format!(
                        "(2) faster than (4) at c={c}: {:.0} vs {:.0} req/s, p50 {:.0} vs {:.0} µs",
                        cached.rps(),
                        direct.rps(),
                        cached.quantile_us(0.5),
                        direct.quantile_us(0.5)
                    ),
                    faster,
                ));
            }
        }
        for (callers, _, _, p99, refreshes) in &self.storm {
            let once = refreshes.iter().all(|r| *r == 1);
            out.push((
                format!("(6) {callers} callers: exactly one refresh per storm: {refreshes:?}"),
                once,
            ));
            if *callers == 256 {
                out.push((
                    format!("(6) added latency p99 < 5 ms for 256 callers: {p99:.2} ms"),
                    *p99 < 5.0,
                ));
            }
        }
        if let Some((stored, hot, rss, _)) = self.rss {
            out.push((
                format!("peak RSS < 100 MiB with {stored} stored / {hot} hot: {rss:.1} MiB"),
                rss < 100.0,
            ));
        }
        if let Some((_, restart)) = self.startup {
            out.push((
                format!("start to SERVING < 300 ms on SQLite: {restart:.0} ms"),
                restart < 300.0,
            ));
        }
        for run in &self.crash {
            out.push((
                format!(
                    "(7) crash recovery on {} within {:.0} s: worst {:.2} s",
                    run.backend.name(),
                    run.limit(),
                    run.worst()
                ),
                run.worst() <= run.limit(),
            ));
        }
        for run in &self.fresh {
            out.push((
                format!(
                    "(8) {}: {} connections kept fresh ({:.2}x the limit of {:.0}/s; most short {}, calls ≥ 200 ms {}, re-presented {})",
                    run.shape.label,
                    run.connections,
                    run.ratio(),
                    run.shape.limit(),
                    run.stale_max,
                    run.waited,
                    run.represented
                ),
                run.kept_fresh(),
            ));
        }
        out
    }

    /// Horizontal bars: throughput and p99 of every scenario relative to the
    /// empty RPC at the same concurrency (1.0 = the limit).
    pub fn svg(&self) -> String {
        let rows: Vec<&Row> = self.rows.iter().filter(|r| r.scenario != EMPTY).collect();
        let (label_w, bar_w, row_h, top) = (420.0, 260.0, 18.0, 60.0);
        let height = top + rows.len() as f64 * row_h + 40.0;
        let width = label_w + 2.0 * bar_w + 80.0;
        let max_p99 = rows
            .iter()
            .filter_map(|r| {
                self.baseline(r.concurrency)
                    .map(|b| r.stats.quantile_us(0.99) / b.quantile_us(0.99))
            })
            .fold(1.5_f64, f64::max);
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">authbroker vs the empty-RPC limit (same run, same machine)</text>\n\
             <text x=\"{label_w}\" y=\"45\">throughput ÷ empty RPC (line = 1.0)</text>\n\
             <text x=\"{}\" y=\"45\">p99 ÷ empty RPC (line = 1.0; scale to {max_p99:.1}x)</text>\n",
            label_w + bar_w + 40.0
        );
        for (i, row) in rows.iter().enumerate() {
            let Some(b) = self.baseline(row.concurrency) else {
                continue;
            };
            let y = top + i as f64 * row_h;
            let rps = (row.stats.rps() / b.rps()).min(1.5);
            let p99 = row.stats.quantile_us(0.99) / b.quantile_us(0.99);
            let x2 = label_w + bar_w + 40.0;
            let _ = write!(
                svg,
                "<text x=\"10\" y=\"{}\">{} · c={}</text>\n\
                 <rect x=\"{label_w}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#4878a8\"/>\n\
                 <text x=\"{:.1}\" y=\"{}\">{:.2}</text>\n\
                 <rect x=\"{x2}\" y=\"{}\" width=\"{:.1}\" height=\"{}\" fill=\"#c8743c\"/>\n\
                 <text x=\"{:.1}\" y=\"{}\">{:.2}</text>\n",
                y + 12.0,
                escape(&row.scenario),
                row.concurrency,
                y + 3.0,
                rps / 1.5 * bar_w,
                row_h - 5.0,
                label_w + rps / 1.5 * bar_w + 3.0,
                y + 12.0,
                row.stats.rps() / b.rps(),
                y + 3.0,
                (p99 / max_p99 * bar_w).max(0.5),
                row_h - 5.0,
                x2 + p99 / max_p99 * bar_w + 3.0,
                y + 12.0,
                p99
            );
        }
        let one_rps = label_w + bar_w / 1.5;
        let one_p99 = label_w + bar_w + 40.0 + bar_w / max_p99;
        let bottom = top + rows.len() as f64 * row_h;
        let _ = write!(
            svg,
            "<line x1=\"{one_rps:.1}\" y1=\"{top}\" x2=\"{one_rps:.1}\" y2=\"{bottom}\" stroke=\"black\" stroke-dasharray=\"3,3\"/>\n\
             <line x1=\"{one_p99:.1}\" y1=\"{top}\" x2=\"{one_p99:.1}\" y2=\"{bottom}\" stroke=\"black\" stroke-dasharray=\"3,3\"/>\n</svg>\n"
        );
        svg
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
