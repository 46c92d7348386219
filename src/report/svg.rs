//! Minimal SVG line plots (no plotting dependency): what a user opens in a browser to look at a
//! spectrum or a convergence history.

use std::fmt::Write;

/// A named series of y values at x = 1, 2, ....
pub struct Series<'a> {
    pub name: &'a str,
    pub values: &'a [f64],
}

const PALETTE: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

/// A semi-logarithmic plot (log10 y axis) of positive values; non-positive values are skipped.
pub fn semilogy(title: &str, xlabel: &str, ylabel: &str, series: &[Series<'_>]) -> String {
    plot(title, xlabel, ylabel, series, true)
}

/// A line plot with a linear y axis (e.g. MCMC traces, autocorrelations); non-finite values
/// are skipped.
pub fn lines(title: &str, xlabel: &str, ylabel: &str, series: &[Series<'_>]) -> String {
    plot(title, xlabel, ylabel, series, false)
}

/// A round tick step (1, 2 or 5 × 10^k) giving at most about `count` ticks over `span`.
fn tick_step(span: f64, count: f64) -> f64 {
    let raw = (span / count).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|f| f * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(raw)
}

fn plot(title: &str, xlabel: &str, ylabel: &str, series: &[Series<'_>], log: bool) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 420.0, 80.0, 20.0, 40.0, 60.0);
    let shown = |v: &f64| v.is_finite() && (!log || *v > 0.0);
    let (lo, hi) = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(shown)
        .map(|v| if log { v.log10() } else { v })
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    let (lo, hi) = match (lo.is_finite(), log) {
        (false, _) => (0.0, 1.0),
        (true, true) => (lo.floor(), hi.ceil().max(lo.floor() + 1.0)),
        (true, false) => {
            let pad = 0.05 * (hi - lo).max(1e-12 * hi.abs().max(1.0));
            (lo - pad, hi + pad)
        }
    };
    // y ticks as (value in axis units, label)
    let yticks: Vec<(f64, String)> = if log {
        ((lo as i32)..=(hi as i32))
            .map(|d| (d as f64, format!("1e{d}")))
            .collect()
    } else {
        let step = tick_step(hi - lo, 6.0);
        let mut t = (lo / step).ceil() * step;
        let mut ticks = Vec::new();
        while t <= hi {
            ticks.push((
                t,
                format!("{:.3}", t)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string(),
            ));
            t += step;
        }
        ticks
    };
    let n = series
        .iter()
        .map(|s| s.values.len())
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    let px = |i: f64| left + (i - 1.0) / (n - 1.0) * (w - left - right);
    let axis = |v: f64| if log { v.log10() } else { v };
    let py = |a: f64| top + (hi - a) / (hi - lo) * (h - top - bottom);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    for (value, label) in &yticks {
        let y = py(*value);
        let _ = writeln!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            w - right
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{label}</text>"#,
            left - 6.0,
            y + 4.0
        );
    }
    // x ticks at 1 and at multiples of a round step (1, 2 or 5 × 10^k), at most about six
    let step = tick_step(n, 6.0).max(1.0);
    let mut tick = 0.0;
    while tick <= n {
        let i = tick.max(1.0);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            px(i),
            h - bottom + 18.0,
            i
        );
        tick += step;
    }
    let _ = writeln!(
        svg,
        r#"<rect x="{left}" y="{top}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        w - left - right,
        h - top - bottom
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (left + w - right) / 2.0,
        h - 16.0,
        escape(xlabel)
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0,
        escape(ylabel)
    );
    for (k, s) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| shown(v))
            .map(|(i, v)| format!("{:.1},{:.1}", px(i as f64 + 1.0), py(axis(*v))))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{}"/>"#,
            points.join(" ")
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
            w - right - 150.0,
            top + 18.0 + 16.0 * k as f64,
            escape(s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
