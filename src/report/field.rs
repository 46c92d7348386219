//! A nodal P1 field as an SVG heat map (viridis colour map; colour bar with range): on the
//! structured unit-square mesh one cell per mesh square, coloured by the mean of its four vertex
//! values; on any other triangulation one polygon per triangle, coloured by the mean of its three.
//! And the sensors of a data set, coloured by their normalized residuals.

use std::fmt::Write;

use crate::fem::Mesh;

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

/// Maps the mesh's bounding box onto a `size` × `size` square at (left, top), aspect kept, y up.
struct Frame {
    x0: f64,
    y0: f64,
    scale: f64,
    left: f64,
    top: f64,
    height: f64,
}

impl Frame {
    fn new(mesh: &Mesh, size: f64, left: f64, top: f64) -> Self {
        let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
        for v in mesh.vertices() {
            for k in 0..2 {
                lo[k] = lo[k].min(v[k]);
                hi[k] = hi[k].max(v[k]);
            }
        }
        let extent = (hi[0] - lo[0]).max(hi[1] - lo[1]).max(f64::MIN_POSITIVE);
        let scale = size / extent;
        Frame {
            x0: lo[0],
            y0: lo[1],
            scale,
            left,
            top,
            height: (hi[1] - lo[1]) * scale,
        }
    }

    fn at(&self, p: [f64; 2]) -> (f64, f64) {
        (
            self.left + (p[0] - self.x0) * self.scale,
            self.top + self.height - (p[1] - self.y0) * self.scale,
        )
    }
}

fn svg_header(svg: &mut String, title: &str, size: f64, left: f64) {
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
}

fn colour_bar(
    svg: &mut String,
    x: f64,
    top: f64,
    size: f64,
    labels: [f64; 3],
    paint: fn(f64) -> String,
) {
    for k in 0..50 {
        let t = 1.0 - k as f64 / 49.0;
        let _ = writeln!(
            svg,
            r#"<rect x="{x}" y="{:.2}" width="20" height="{:.2}" fill="{}"/>"#,
            top + k as f64 * size / 50.0,
            size / 50.0 + 0.5,
            paint(t)
        );
    }
    for (t, v) in [(0.0, labels[0]), (0.5, labels[1]), (1.0, labels[2])] {
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}">{:.3e}</text>"#,
            x + 26.0,
            top + t * size + 4.0,
            v
        );
    }
}

/// The nodal field `values` on `mesh`: [`heat_map`] on the structured unit square, else one
/// polygon per triangle.
pub fn mesh_map(title: &str, mesh: &Mesh, values: &[f64]) -> String {
    if let Some(n) = mesh.structured_size() {
        return heat_map(title, n, values);
    }
    assert_eq!(
        values.len(),
        mesh.num_vertices(),
        "one value per mesh vertex"
    );
    let (size, left, top) = (400.0, 20.0, 40.0);
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let frame = Frame::new(mesh, size, left, top);
    let mut svg = String::new();
    svg_header(&mut svg, title, size, left);
    let vertices = mesh.vertices();
    for t in mesh.triangles() {
        let v = (values[t[0]] + values[t[1]] + values[t[2]]) / 3.0;
        let pts: Vec<String> = t
            .iter()
            .map(|&k| {
                let (x, y) = frame.at(vertices[k]);
                format!("{x:.2},{y:.2}")
            })
            .collect();
        let c = colour((v - lo) / span);
        let _ = writeln!(
            svg,
            r#"<polygon points="{}" fill="{c}" stroke="{c}" stroke-width="0.3"/>"#,
            pts.join(" ")
        );
    }
    colour_bar(
        &mut svg,
        left + size + 20.0,
        top,
        size,
        [hi, 0.5 * (lo + hi), lo],
        colour,
    );
    svg.push_str("</svg>\n");
    svg
}

/// Blue (t = 0) – white (t = ½) – red (t = 1).
fn diverging(t: f64) -> String {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let (blue, red) = ([33.0, 102.0, 172.0], [178.0, 24.0, 43.0]);
    let c: Vec<u8> = (0..3)
        .map(|k| {
            let v = if t < 0.5 {
                blue[k] + (255.0 - blue[k]) * (2.0 * t)
            } else {
                255.0 + (red[k] - 255.0) * (2.0 * t - 1.0)
            };
            v.round() as u8
        })
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The sensors at `points` over the mesh's boundary, each a disc coloured by its normalized
/// residual z_k = (Γ^{-1/2}(d − q))_k on a diverging scale symmetric about 0 (|z| ≤ 3 spans it).
pub fn sensor_map(title: &str, mesh: &Mesh, points: &[[f64; 2]], normalized: &[f64]) -> String {
    let (size, left, top) = (400.0, 20.0, 40.0);
    let frame = Frame::new(mesh, size, left, top);
    let mut svg = String::new();
    svg_header(&mut svg, title, size, left);
    let vertices = mesh.vertices();
    for e in mesh.boundary_edges() {
        let (a, b) = (frame.at(vertices[e[0]]), frame.at(vertices[e[1]]));
        let _ = writeln!(
            svg,
            r#"<line x1="{:.2}" y1="{:.2}" x2="{:.2}" y2="{:.2}" stroke="black" stroke-width="1"/>"#,
            a.0, a.1, b.0, b.1
        );
    }
    let bound = normalized.iter().fold(
        3.0f64,
        |a, z| if z.is_finite() { a.max(z.abs()) } else { a },
    );
    for (p, z) in points.iter().zip(normalized) {
        let (x, y) = frame.at(*p);
        let _ = writeln!(
            svg,
            r#"<circle cx="{x:.2}" cy="{y:.2}" r="5" fill="{}" stroke="black" stroke-width="0.5"><title>({:.4}, {:.4}): z = {z:.3}</title></circle>"#,
            diverging(0.5 + 0.5 * z / bound),
            p[0],
            p[1]
        );
    }
    colour_bar(
        &mut svg,
        left + size + 20.0,
        top,
        size,
        [bound, 0.0, -bound],
        diverging,
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_structured_mesh_map_is_the_heat_map_and_a_file_mesh_draws_every_triangle() {
        let square = Mesh::unit_square(4);
        let values: Vec<f64> = (0..25).map(|k| k as f64).collect();
        assert_eq!(mesh_map("t", &square, &values), heat_map("t", 4, &values));
        let tri = Mesh::from_parts(
            "t.msh",
            vec![[0.0, 0.0], [2.0, 0.0], [0.0, 1.0], [2.0, 1.0]],
            vec![[0, 1, 2], [1, 3, 2]],
            vec![],
        )
        .unwrap();
        let svg = mesh_map("t", &tri, &[0.0, 1.0, 2.0, 3.0]);
        assert_eq!(svg.matches("<polygon").count(), 2);
        let sensors = sensor_map("s", &tri, &[[0.5, 0.5], [1.5, 0.5]], &[-1.0, 4.0]);
        assert_eq!(sensors.matches("<circle").count(), 2);
        assert_eq!(sensors.matches("<line").count(), 4);
        // the largest |z| sets the scale: z = 4 is full red
        assert!(sensors.contains("fill=\"#b2182b\""), "{sensors}");
    }
}
