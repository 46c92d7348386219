//! A [`Mesh`] from a Gmsh file ([`super::gmsh`]): vertices are the nodes used by triangles,
//! ordered by ascending node tag (nodes used by no triangle are dropped with a warning);
//! boundary groups are the physical curves, by name (`$PhysicalNames`) or, unnamed, by tag.

use std::collections::HashMap;
use std::path::Path;

use super::gmsh::{parse_msh, MshMesh};
use super::mesh::{BoundaryGroup, Mesh};
use crate::error::{Error, Result};

/// Reads a Gmsh mesh file; returns the mesh and the file's checksum.
pub fn read_mesh(path: &Path) -> Result<(Mesh, String)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let raw = parse_msh(&bytes).map_err(|e| Error::parse(path, e.message))?;
    let mesh = mesh_from_msh(raw, &path.display().to_string())?;
    Ok((mesh, crate::io::checksum::hex(&bytes)))
}

/// The mesh of parsed file contents; `file` names it in errors.
pub fn mesh_from_msh(raw: MshMesh, file: &str) -> Result<Mesh> {
    let bad = |m: String| Error::parse(file, m);
    let mut nodes = raw.nodes;
    nodes.sort_by_key(|n| n.0);
    if let Some(w) = nodes.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(bad(format!("node tag {} appears twice", w[0].0)));
    }
    if let Some(n) = nodes.iter().find(|n| !n.1.iter().all(|c| c.is_finite())) {
        return Err(bad(format!("node {} has a non-finite coordinate", n.0)));
    }
    if raw.triangles.is_empty() {
        return Err(bad(
            "the mesh has no triangles (Gmsh type 2): is it a 2-D surface mesh?".into(),
        ));
    }
    let position: HashMap<u64, usize> = nodes.iter().enumerate().map(|(i, n)| (n.0, i)).collect();
    let mut used = vec![false; nodes.len()];
    for (tri, _) in &raw.triangles {
        for tag in tri {
            let i = *position.get(tag).ok_or_else(|| {
                bad(format!(
                    "a triangle names node {tag}, which is not in $Nodes"
                ))
            })?;
            used[i] = true;
        }
    }
    let dropped = used.iter().filter(|u| !**u).count();
    if dropped > 0 {
        eprintln!(
            "warning: {file}: {dropped} node(s) used by no triangle were dropped (nodal fields are \
             ordered by ascending tag of the nodes kept)"
        );
    }
    let mut index = vec![usize::MAX; nodes.len()];
    let mut vertices = Vec::with_capacity(nodes.len() - dropped);
    for (i, n) in nodes.iter().enumerate() {
        if used[i] {
            index[i] = vertices.len();
            vertices.push(n.1);
        }
    }
    let vertex = |tag: &u64| {
        position
            .get(tag)
            .map(|&i| index[i])
            .filter(|&v| v != usize::MAX)
    };
    let triangles: Vec<[usize; 3]> = raw
        .triangles
        .iter()
        .map(|(t, _)| [0, 1, 2].map(|a| vertex(&t[a]).expect("checked above")))
        .collect();
    let names: HashMap<i32, &str> = raw
        .physical_names
        .iter()
        .filter(|(dim, _, _)| *dim == 1)
        .map(|(_, tag, name)| (*tag, name.as_str()))
        .collect();
    let mut groups: Vec<BoundaryGroup> = Vec::new();
    for (line, physical) in &raw.lines {
        if *physical == 0 {
            continue;
        }
        let name = names
            .get(physical)
            .map_or_else(|| physical.to_string(), |n| n.to_string());
        let (Some(a), Some(b)) = (vertex(&line[0]), vertex(&line[1])) else {
            return Err(bad(format!(
                "a boundary line of group \"{name}\" names a node that no triangle uses"
            )));
        };
        match groups.iter_mut().find(|g| g.name == name) {
            Some(g) => g.edges.push([a, b]),
            None => groups.push(BoundaryGroup {
                name,
                edges: vec![[a, b]],
            }),
        }
    }
    Mesh::from_parts(file, vertices, triangles, groups)
}

/// Writes `mesh` as an MSH 2.2 ASCII file (node tag = vertex index + 1; one physical curve per
/// boundary group, tags 1, 2, …; the triangles in one physical surface "domain").
pub fn write_msh22(mesh: &Mesh) -> String {
    use std::fmt::Write;
    let groups = mesh.boundary_groups();
    let mut s = String::from("$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$PhysicalNames\n");
    writeln!(s, "{}", groups.len() + 1).unwrap();
    for (k, g) in groups.iter().enumerate() {
        writeln!(s, "1 {} \"{}\"", k + 1, g.name).unwrap();
    }
    let surface = groups.len() + 1;
    writeln!(s, "2 {surface} \"domain\"\n$EndPhysicalNames").unwrap();
    writeln!(s, "$Nodes\n{}", mesh.num_vertices()).unwrap();
    for (i, p) in mesh.vertices().iter().enumerate() {
        writeln!(s, "{} {:?} {:?} 0", i + 1, p[0], p[1]).unwrap();
    }
    let lines: usize = groups.iter().map(|g| g.edges.len()).sum();
    writeln!(s, "$EndNodes\n$Elements\n{}", lines + mesh.num_triangles()).unwrap();
    let mut tag = 1;
    for (k, g) in groups.iter().enumerate() {
        for e in &g.edges {
            writeln!(s, "{tag} 1 2 {} {} {} {}", k + 1, k + 1, e[0] + 1, e[1] + 1).unwrap();
            tag += 1;
        }
    }
    for t in mesh.triangles() {
        writeln!(
            s,
            "{tag} 2 2 {surface} 1 {} {} {}",
            t[0] + 1,
            t[1] + 1,
            t[2] + 1
        )
        .unwrap();
        tag += 1;
    }
    s.push_str("$EndElements\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Mesh> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.msh");
        std::fs::write(&path, text).unwrap();
        read_mesh(&path).map(|m| m.0)
    }

    #[test]
    fn the_square_written_as_msh_reads_back_as_the_square() {
        let square = Mesh::unit_square(5);
        let mesh = read(&write_msh22(&square)).unwrap();
        assert_eq!(mesh.structured_size(), Some(5));
        assert_eq!(mesh.vertices(), square.vertices());
        assert_eq!(mesh.boundary_edges(), square.boundary_edges());
        assert_eq!(
            mesh.boundary_names(),
            vec!["left", "right", "bottom", "top"]
        );
    }
}
