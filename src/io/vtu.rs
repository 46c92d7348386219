//! VTK XML unstructured-grid (`.vtu`) output of nodal fields on the triangle mesh, for ParaView.

use std::io::Write;
use std::path::Path;

use super::atomic::write_atomic;
use crate::error::Result;
use crate::fem::Mesh;

/// A named field on the mesh: one value per vertex (`components = 1`) or a vector per vertex.
pub struct PointField<'a> {
    pub name: &'a str,
    pub components: usize,
    pub values: &'a [f64],
}

/// Writes `fields` on `mesh` as an ASCII `.vtu` file (atomically).
pub fn write_vtu(path: impl AsRef<Path>, mesh: &Mesh, fields: &[PointField<'_>]) -> Result<()> {
    for f in fields {
        assert_eq!(
            f.values.len(),
            f.components * mesh.num_vertices(),
            "field {} has the wrong length",
            f.name
        );
    }
    write_atomic(path, |w: &mut dyn Write| {
        writeln!(w, r#"<?xml version="1.0"?>"#)?;
        writeln!(
            w,
            r#"<VTKFile type="UnstructuredGrid" version="0.1" byte_order="LittleEndian">"#
        )?;
        writeln!(w, "<UnstructuredGrid>")?;
        writeln!(
            w,
            r#"<Piece NumberOfPoints="{}" NumberOfCells="{}">"#,
            mesh.num_vertices(),
            mesh.num_triangles()
        )?;
        writeln!(w, "<Points>")?;
        writeln!(
            w,
            r#"<DataArray type="Float64" NumberOfComponents="3" format="ascii">"#
        )?;
        for p in mesh.vertices() {
            writeln!(w, "{:e} {:e} 0", p[0], p[1])?;
        }
        writeln!(w, "</DataArray>\n</Points>\n<Cells>")?;
        writeln!(
            w,
            r#"<DataArray type="Int64" Name="connectivity" format="ascii">"#
        )?;
        for t in mesh.triangles() {
            writeln!(w, "{} {} {}", t[0], t[1], t[2])?;
        }
        writeln!(w, "</DataArray>")?;
        writeln!(
            w,
            r#"<DataArray type="Int64" Name="offsets" format="ascii">"#
        )?;
        for k in 1..=mesh.num_triangles() {
            writeln!(w, "{}", 3 * k)?;
        }
        writeln!(w, "</DataArray>")?;
        writeln!(w, r#"<DataArray type="UInt8" Name="types" format="ascii">"#)?;
        for _ in 0..mesh.num_triangles() {
            writeln!(w, "5")?;
        }
        writeln!(w, "</DataArray>\n</Cells>\n<PointData>")?;
        for f in fields {
            // ParaView shows 2-vectors best as 3-vectors
            let nc = if f.components == 2 { 3 } else { f.components };
            writeln!(
                w,
                r#"<DataArray type="Float64" Name="{}" NumberOfComponents="{nc}" format="ascii">"#,
                f.name
            )?;
            for chunk in f.values.chunks(f.components) {
                let mut line: Vec<String> = chunk.iter().map(|v| format!("{v:e}")).collect();
                if f.components == 2 {
                    line.push("0".into());
                }
                writeln!(w, "{}", line.join(" "))?;
            }
            writeln!(w, "</DataArray>")?;
        }
        writeln!(w, "</PointData>\n</Piece>\n</UnstructuredGrid>\n</VTKFile>")
    })
}
