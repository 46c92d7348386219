//! A nodal P1 field on the unit-square mesh as an SVG heat map (one cell per mesh square,
//! coloured by the mean of its four vertex values; viridis colour map; colour bar with range).

use std::fmt::Write;

/// Viridis anchors (0, 0.25, 0.5, 0.75, 1).
const VIRIDIS: [[f64; 3]; 5] = [
    [68.0, 1.0, 84.0],
    [59.0, 82.0, 139.0],
    [33.0, 145.0, 140.0],
    [94.0, 201.0, 98.0],
    [253.0, 231.0, 37.0],
];

fn colour(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let c: Vec<u8> = (0..3)
        .map(|k| (VIRIDIS[i][k] + f * (VIRIDIS[i + 1][k] - VIRIDIS[i][k])).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The field `values` (vertex k = j (n+1) + i at (i/n, j/n)) on an n × n mesh.
pub fn heat_map(title: &str, n: usize, values: &[f64]) -> String {
    assert_eq!(values.len(), (n + 1) * (n + 1), "one value per mesh vertex");
    let (size, left, top) = (400.0, 20.0, 40.0);
    let cell = size / n as f64;
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif" font-size="12">"#,
        size + 140.0,
        size + 60.0
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        left + size / 2.0,
        title.replace('&', "&amp;").replace('<', "&lt;")
    );
    let at = |i: usize, j: usize| values[j * (n + 1) + i];
    for j in 0..n {
        for i in 0..n {
            let v = 0.25 * (at(i, j) + at(i + 1, j) + at(i, j + 1) + at(i + 1, j + 1));
            // y up: row j = 0 at the bottom
            let _ = writeln!(
                svg,
                r#"<rect x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}" fill="{}"/>"#,
                left + i as f64 * cell,
                top + (n - 1 - j) as f64 * cell,
                cell + 0.3,
                cell + 0.3,
                colour((v - lo) / span)
            );
        }
    }
    let bar_x = left + size + 20.0;
    for k in 0..50 {
        let t = 1.0 - k as f64 / 49.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{bar_x}" y="{:.2}" width="20" height="{:.2}" fill="{}"/>"#,
            top + k as f64 * size / 50.0,
            size / 50.0 + 0.5,
            colour(t)
        );
    }
    for (t, v) in [(0.0, hi), (0.5, 0.5 * (lo + hi)), (1.0, lo)] {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}">{:.3e}</text>"#,
            bar_x + 26.0,
            top + t * size + 4.0,
            v
        );
    }
    svg.push_str("</svg>\n");
    svg
}
