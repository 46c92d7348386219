//! Reader for Gmsh `.msh` files holding 2-D first-order triangle meshes.
//!
//! Supported: MSH 2.2 and MSH 4.1, each ASCII or binary (binary must be little-endian with
//! 8-byte reals, as Gmsh writes it). Sections read: `$MeshFormat`, `$PhysicalNames` (optional),
//! `$Entities` (4.1: gives each curve/surface its first physical tag, 0 if none; it must precede
//! `$Elements`, as Gmsh writes it), `$Nodes` and `$Elements`. Every other section (`$Comments`,
//! `$NodeData`, `$Periodic`, ...) is skipped by scanning to its `$End...` marker. Kept elements:
//! 2-node lines (type 1) and 3-node triangles (type 2); 1-node points (type 15) are dropped and
//! any other type is an error. The z coordinate is ignored. No topological checks are done
//! here, only that every element node tag is the tag of a node of the file.
use std::collections::HashMap;
use std::path::Path;

/// The raw contents of a 2-D triangle mesh file, before any FEM processing.
#[derive(Debug, Clone, Default)]
pub struct MshMesh {
    /// (node tag, [x, y]) for every node in the file, in file order (z is ignored).
    pub nodes: Vec<(u64, [f64; 2])>,
    /// 3-node triangles (Gmsh element type 2) as node tags, with the physical tag (0 if none), file order.
    pub triangles: Vec<([u64; 3], i32)>,
    /// 2-node lines (Gmsh element type 1) as node tags, with their physical tag (0 if none), file order.
    pub lines: Vec<([u64; 2], i32)>,
    /// `$PhysicalNames` entries: (dimension, physical tag, name).
    pub physical_names: Vec<(i32, i32, String)>,
}

/// Why a file could not be read: a message naming the line (ASCII) or byte offset (binary) and
/// what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct MshError {
    pub message: String,
}

impl std::fmt::Display for MshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MshError {}

type Res<T> = Result<T, MshError>;

fn err<T>(message: String) -> Res<T> {
    Err(MshError { message })
}

/// Reads and parses the Gmsh file at `path`.
pub fn read_msh(path: &Path) -> Result<MshMesh, MshError> {
    let shown = path.display();
    match std::fs::read(path) {
        Ok(bytes) => parse_msh(&bytes).or_else(|e| err(format!("{shown}: {}", e.message))),
        Err(e) => err(format!("cannot read Gmsh file {shown}: {e}")),
    }
}

const TYPE_NAMES: &str = "1:2-node line|2:3-node triangle|3:4-node quadrangle|\
    4:4-node tetrahedron|5:8-node hexahedron|6:6-node prism|7:5-node pyramid|\
    8:3-node second-order line|9:6-node second-order triangle|\
    10:9-node second-order quadrangle|11:10-node second-order tetrahedron|15:1-node point|\
    16:8-node second-order quadrangle|21:10-node third-order triangle|26:4-node third-order line";

fn unsupported<T>(tag: u64, ty: i32) -> Res<T> {
    let mut names = TYPE_NAMES.split('|').filter_map(|e| e.split_once(':'));
    let name = names
        .find(|(k, _)| k.parse() == Ok(ty))
        .map_or("unknown", |(_, v)| v);
    err(format!(
        "element {tag} has Gmsh type {ty} ({name}); dino supports 3-node triangles (type 2) and \
         2-node boundary lines (type 1): mesh with `-order 1` and no recombination"
    ))
}

/// Node count of the element types that are read: lines, triangles and points.
fn nodes_per_element(ty: i32) -> Option<usize> {
    [(1, 2), (2, 3), (15, 1)]
        .iter()
        .find(|e| e.0 == ty)
        .map(|e| e.1)
}

fn parse_u64(t: &[u8]) -> Option<u64> {
    let t = t.strip_prefix(b"+").unwrap_or(t);
    let mut v: u64 = 0;
    for &b in t {
        let d = b.wrapping_sub(b'0');
        (d <= 9).then_some(())?;
        v = v.checked_mul(10)?.checked_add(u64::from(d))?;
    }
    (!t.is_empty()).then_some(v)
}

fn parse_i32(t: &[u8]) -> Option<i32> {
    match t.strip_prefix(b"-") {
        Some(rest) => i32::try_from(-i64::try_from(parse_u64(rest)?).ok()?).ok(),
        None => i32::try_from(parse_u64(t)?).ok(),
    }
}

fn parse_f64(t: &[u8]) -> Option<f64> {
    std::str::from_utf8(t).ok()?.parse().ok()
}

/// Byte cursor over the file with line tracking; `binary` switches the data readers.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    line: usize,
    binary: bool,
    section: &'static str,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, pos: usize, msg: String) -> Res<T> {
        match self.binary {
            true => err(format!("{}, byte offset {pos}: {msg}", self.section)),
            false => err(format!("{}, line {}: {msg}", self.section, self.line)),
        }
    }

    fn eof<T>(&self, what: &str) -> Res<T> {
        let s = self.section;
        err(format!(
            "file is truncated: it ended early inside {s} (expected {what})"
        ))
    }

    fn skip_ws(&mut self) {
        while let Some(&b) = self.buf.get(self.pos) {
            if b == b'\n' {
                self.line += 1;
            } else if !b.is_ascii_whitespace() {
                break;
            }
            self.pos += 1;
        }
    }

    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.pos >= self.buf.len()
    }

    /// Next whitespace-delimited token and its start offset.
    fn token(&mut self, what: &str) -> Res<(&'a [u8], usize)> {
        if self.at_end() {
            return self.eof(what);
        }
        let (start, rest) = (self.pos, &self.buf[self.pos..]);
        let len = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        self.pos += len;
        Ok((&rest[..len], start))
    }

    fn bad<T>(&self, start: usize, what: &str, tok: &[u8]) -> Res<T> {
        let shown = String::from_utf8_lossy(&tok[..tok.len().min(40)]);
        self.fail(start, format!("expected {what}, found `{shown}`"))
    }

    fn ascii<T>(&mut self, what: &str, parse: fn(&[u8]) -> Option<T>) -> Res<T> {
        let (tok, start) = self.token(what)?;
        parse(tok).map_or_else(|| self.bad(start, what, tok), Ok)
    }

    fn take<const N: usize>(&mut self, what: &str) -> Res<[u8; N]> {
        let bytes = self
            .buf
            .get(self.pos..self.pos + N)
            .and_then(|b| b.try_into().ok());
        self.pos += N;
        bytes.map_or_else(|| self.eof(what), Ok)
    }

    /// A `size_t` (8 bytes in binary files).
    fn size(&mut self, what: &str) -> Res<u64> {
        match self.binary {
            true => self.take(what).map(u64::from_le_bytes),
            false => self.ascii(what, parse_u64),
        }
    }

    /// An `int` (4 bytes in binary files).
    fn int(&mut self, what: &str) -> Res<i32> {
        match self.binary {
            true => self.take(what).map(i32::from_le_bytes),
            false => self.ascii(what, parse_i32),
        }
    }

    fn real(&mut self, what: &str) -> Res<f64> {
        match self.binary {
            true => self.take(what).map(f64::from_le_bytes),
            false => self.ascii(what, parse_f64),
        }
    }

    /// A tag that MSH 2.2 stores as an `int` in binary files.
    fn tag2(&mut self, what: &str) -> Res<u64> {
        if !self.binary {
            return self.ascii(what, parse_u64);
        }
        let (pos, v) = (self.pos, self.int(what)?);
        u64::try_from(v).or_else(|_| self.fail(pos, format!("negative {what} {v}")))
    }

    /// Reads `n` ints and returns the first one, 0 if `n` is 0.
    fn first_int(&mut self, n: u64, what: &str) -> Res<i32> {
        let mut first = 0;
        for k in 0..n {
            let v = self.int(what)?;
            first = if k == 0 { v } else { first };
        }
        Ok(first)
    }

    /// In binary files, consumes the rest of an ASCII line through its `\n`, so that the binary
    /// data after it starts at `pos`.
    fn end_line(&mut self) -> Res<()> {
        while self.binary {
            let Some(&b) = self.buf.get(self.pos) else {
                return self.eof("binary data");
            };
            self.pos += 1;
            if b == b'\n' {
                break;
            } else if !b.is_ascii_whitespace() {
                return self.fail(self.pos - 1, "expected the end of the line".into());
            }
        }
        Ok(())
    }

    fn expect_end(&mut self, marker: &str) -> Res<()> {
        let (tok, start) = self.token(marker)?;
        match tok == marker.as_bytes() {
            true => Ok(()),
            false => self.bad(start, marker, tok),
        }
    }

    /// Skips an unknown section named `name` (without `$`) by scanning to `$End<name>`.
    fn skip_section(&mut self, name: &[u8]) -> Res<()> {
        let marker = [&b"$End"[..], name].concat();
        let rest = &self.buf[self.pos..];
        let Some(i) = rest.windows(marker.len()).position(|w| w == marker) else {
            let (m, n) = (
                String::from_utf8_lossy(&marker),
                String::from_utf8_lossy(name),
            );
            return err(format!(
                "file is truncated: section ${n} has no closing {m}"
            ));
        };
        self.line += rest[..i].iter().filter(|&&b| b == b'\n').count();
        self.pos += i + marker.len();
        Ok(())
    }

    /// Capacity hint bounded by the bytes left, so a corrupt count cannot exhaust memory.
    fn cap(&self, count: u64, bytes_each: usize) -> usize {
        let left = self.buf.len().saturating_sub(self.pos) / bytes_each;
        usize::try_from(count).map_or(left, |c| c.min(left))
    }
}

/// Per-parse state beyond the mesh itself.
#[derive(Default)]
struct State {
    mesh: MshMesh,
    tags: [Vec<u64>; 2],
    physical: [HashMap<i32, i32>; 2],
}

impl State {
    fn push(&mut self, ty: i32, tag: u64, n: [u64; 3], phys: i32) {
        match ty {
            1 => self.mesh.lines.push(([n[0], n[1]], phys)),
            2 => self.mesh.triangles.push((n, phys)),
            _ => return,
        }
        self.tags[ty as usize - 1].push(tag);
    }
}

/// Parses the bytes of a Gmsh `.msh` file (see the module documentation for what is supported).
pub fn parse_msh(bytes: &[u8]) -> Result<MshMesh, MshError> {
    let mut r = Reader {
        buf: bytes,
        pos: 0,
        line: 1,
        binary: false,
        section: "$MeshFormat",
    };
    if r.at_end() || r.token("")?.0 != b"$MeshFormat" {
        return err("missing $MeshFormat: a .msh file must begin with $MeshFormat".into());
    }
    let v4 = read_format(&mut r)?;
    let mut st = State::default();
    let (mut have_nodes, mut have_elements) = (false, false);
    while !r.at_end() {
        r.section = "the file";
        let (tok, start) = r.token("a section header")?;
        let name = tok
            .strip_prefix(b"$")
            .filter(|n| !n.is_empty() && !n.starts_with(b"End"));
        r.section = match name {
            Some(b"PhysicalNames") => "$PhysicalNames",
            Some(b"Entities") if v4 => "$Entities",
            Some(b"Nodes") => "$Nodes",
            Some(b"Elements") => "$Elements",
            Some(n) => {
                r.skip_section(n)?;
                continue;
            }
            None => return r.bad(start, "a section header such as $Nodes", tok),
        };
        match r.section {
            "$PhysicalNames" => read_physical_names(&mut r, &mut st.mesh)?,
            "$Entities" => read_entities(&mut r, &mut st)?,
            "$Nodes" if v4 => read_nodes4(&mut r, &mut st.mesh)?,
            "$Nodes" => read_nodes2(&mut r, &mut st.mesh)?,
            _ if v4 => read_elements4(&mut r, &mut st)?,
            _ => read_elements2(&mut r, &mut st)?,
        }
        have_nodes |= r.section == "$Nodes";
        have_elements |= r.section == "$Elements";
    }
    for (ok, name) in [(have_nodes, "$Nodes"), (have_elements, "$Elements")] {
        if !ok {
            return err(format!("missing {name} section"));
        }
    }
    check_node_refs(&st)?;
    Ok(st.mesh)
}

/// Reads the body of `$MeshFormat`; returns whether the file is version 4.1.
fn read_format(r: &mut Reader) -> Res<bool> {
    let (tok, _) = r.token("the format version")?;
    let v4 = match parse_f64(tok) {
        Some(v) if v == 2.2 || v == 4.1 => v == 4.1,
        _ => {
            let shown = String::from_utf8_lossy(&tok[..tok.len().min(40)]);
            return err(format!(
                "unsupported MSH format version `{shown}`: dino reads MSH 2.2 and 4.1, ASCII or \
                 binary (export with `gmsh -format msh41` or `-format msh22`)"
            ));
        }
    };
    let pos = r.pos;
    let file_type = r.ascii("the file type (0 = ASCII, 1 = binary)", parse_i32)?;
    let data_size = r.ascii("the data size", parse_i32)?;
    match (file_type, data_size) {
        (0, _) => {}
        (1, 8) => {
            r.binary = true;
            r.end_line()?;
            let (pos, one) = (r.pos, r.take("the endianness integer 1")?);
            if i32::from_le_bytes(one) != 1 {
                let be = i32::from_be_bytes(one) == 1;
                let msg = if be {
                    "big-endian files are not supported"
                } else {
                    "expected 1"
                };
                return r.fail(pos, format!("bad endianness integer: {msg}"));
            }
        }
        (1, d) => return r.fail(pos, format!("binary data size {d}; only 8 is supported")),
        (t, _) => return r.fail(pos, format!("file type {t}; expected 0 or 1")),
    }
    r.expect_end("$EndMeshFormat")?;
    Ok(v4)
}

fn read_physical_names(r: &mut Reader, mesh: &mut MshMesh) -> Res<()> {
    for _ in 0..r.ascii("the number of physical names", parse_u64)? {
        let dim = r.ascii("a physical dimension", parse_i32)?;
        let tag = r.ascii("a physical tag", parse_i32)?;
        let what = "a quoted physical name";
        if r.at_end() {
            return r.eof(what);
        } else if r.buf[r.pos] != b'"' {
            return r.fail(r.pos, format!("expected {what}"));
        }
        let rest = &r.buf[r.pos + 1..];
        let Some(len) = rest.iter().position(|&b| b == b'"') else {
            return r.eof("the closing quote of a physical name");
        };
        let name = String::from_utf8_lossy(&rest[..len]).into_owned();
        mesh.physical_names.push((dim, tag, name));
        r.pos += len + 2;
    }
    r.expect_end("$EndPhysicalNames")
}

fn read_entities(r: &mut Reader, st: &mut State) -> Res<()> {
    r.end_line()?;
    let mut counts = [0u64; 4];
    for c in &mut counts {
        *c = r.size("an entity count")?;
    }
    for (dim, &count) in counts.iter().enumerate() {
        for _ in 0..count {
            let tag = r.int("an entity tag")?;
            for _ in 0..if dim == 0 { 3 } else { 6 } {
                r.real("an entity coordinate")?;
            }
            let n = r.size("the number of physical tags")?;
            let phys = r.first_int(n, "a physical tag")?;
            if dim > 0 {
                let n = r.size("the number of bounding entities")?;
                r.first_int(n, "a bounding entity tag")?;
            }
            if dim == 1 || dim == 2 {
                st.physical[dim - 1].insert(tag, phys);
            }
        }
    }
    r.expect_end("$EndEntities")
}

fn read_xyz(r: &mut Reader, tag: u64, mesh: &mut MshMesh) -> Res<()> {
    let xyz = [
        r.real("a node x")?,
        r.real("a node y")?,
        r.real("a node z")?,
    ];
    if !xyz.iter().all(|c| c.is_finite()) {
        return r.fail(
            r.pos,
            format!("node {tag} has a non-finite coordinate {xyz:?}"),
        );
    }
    mesh.nodes.push((tag, [xyz[0], xyz[1]]));
    Ok(())
}

fn read_nodes2(r: &mut Reader, mesh: &mut MshMesh) -> Res<()> {
    let n = r.ascii("the number of nodes", parse_u64)?;
    r.end_line()?;
    mesh.nodes.reserve(r.cap(n, 8));
    for _ in 0..n {
        let tag = r.tag2("a node tag")?;
        read_xyz(r, tag, mesh)?;
    }
    r.expect_end("$EndNodes")
}

fn read_nodes4(r: &mut Reader, mesh: &mut MshMesh) -> Res<()> {
    r.end_line()?;
    let blocks = r.size("the number of node blocks")?;
    let total = r.size("the number of nodes")?;
    r.size("the minimum node tag")?;
    r.size("the maximum node tag")?;
    mesh.nodes.reserve(r.cap(total, 8));
    let mut tags = Vec::new();
    for _ in 0..blocks {
        let pos = r.pos;
        let dim = r.int("a node block entity dimension")?;
        r.int("a node block entity tag")?;
        let parametric = r.int("the node block parametric flag")?;
        let n = r.size("the number of nodes in the block")?;
        if !(0..=3).contains(&dim) || !(0..=1).contains(&parametric) {
            return r.fail(
                pos,
                format!("bad node block: dim {dim}, parametric {parametric}"),
            );
        }
        tags.clear();
        for _ in 0..n {
            tags.push(r.size("a node tag")?);
        }
        for &tag in &tags {
            read_xyz(r, tag, mesh)?;
            for _ in 0..dim * parametric {
                r.real("a parametric node coordinate")?;
            }
        }
    }
    r.expect_end("$EndNodes")
}

/// MSH 2.2 elements: ASCII lines `tag type ntags tags... nodes...`, or binary blocks headed by
/// `type count ntags`, each element being `tag tags... nodes...`.
fn read_elements2(r: &mut Reader, st: &mut State) -> Res<()> {
    let n = r.ascii("the number of elements", parse_u64)?;
    r.end_line()?;
    let mut done = 0;
    while done < n {
        let pos = r.pos;
        let (ty, count, ntags, mut tag) = if r.binary {
            let h = [
                r.int("element type")?,
                r.int("element count")?,
                r.int("tag count")?,
            ];
            match u64::try_from(h[1]) {
                Ok(c) if c >= 1 && c <= n - done && h[2] >= 0 => (h[0], c, h[2] as u64, None),
                _ => return r.fail(pos, format!("bad element block header {h:?}")),
            }
        } else {
            let tag = r.ascii("an element tag", parse_u64)?;
            (
                r.int("an element type")?,
                1,
                r.size("the number of element tags")?,
                Some(tag),
            )
        };
        let Some(nn) = nodes_per_element(ty) else {
            return unsupported(tag.map_or_else(|| r.tag2("an element tag"), Ok)?, ty);
        };
        for _ in 0..count {
            let tag = tag.take().map_or_else(|| r.tag2("an element tag"), Ok)?;
            let phys = r.first_int(ntags, "an element tag value")?;
            let mut nodes = [0; 3];
            for v in &mut nodes[..nn] {
                *v = r.tag2("an element node tag")?;
            }
            st.push(ty, tag, nodes, phys);
        }
        done += count;
    }
    r.expect_end("$EndElements")
}

fn read_elements4(r: &mut Reader, st: &mut State) -> Res<()> {
    r.end_line()?;
    let blocks = r.size("the number of element blocks")?;
    let total = r.size("the number of elements")?;
    r.size("the minimum element tag")?;
    r.size("the maximum element tag")?;
    st.mesh.triangles.reserve(r.cap(total, 32));
    for _ in 0..blocks {
        let dim = r.int("an element block entity dimension")?;
        let entity = r.int("an element block entity tag")?;
        let ty = r.int("an element block type")?;
        let n = r.size("the number of elements in the block")?;
        let map = matches!(dim, 1 | 2).then(|| &st.physical[dim as usize - 1]);
        let phys = map.and_then(|m| m.get(&entity)).copied().unwrap_or(0);
        let Some(nn) = nodes_per_element(ty) else {
            match n {
                0 => continue,
                _ => return unsupported(r.size("an element tag")?, ty),
            }
        };
        for _ in 0..n {
            let tag = r.size("an element tag")?;
            let mut nodes = [0; 3];
            for v in &mut nodes[..nn] {
                *v = r.size("an element node tag")?;
            }
            st.push(ty, tag, nodes, phys);
        }
    }
    r.expect_end("$EndElements")
}

/// Every element node tag must be the tag of a node in the file.
fn check_node_refs(st: &State) -> Res<()> {
    let mut known: Vec<u64> = st.mesh.nodes.iter().map(|n| n.0).collect();
    known.sort_unstable();
    let m = &st.mesh;
    let tris = m.triangles.iter().map(|t| &t.0[..]).zip(&st.tags[1]);
    let elems = tris.chain(m.lines.iter().map(|l| &l.0[..]).zip(&st.tags[0]));
    for (ns, tag) in elems {
        if let Some(t) = ns.iter().find(|t| known.binary_search(t).is_err()) {
            return err(format!(
                "element {tag} references node tag {t}, which is not in $Nodes"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &str = "$PhysicalNames\n5\n1 1 \"bottom\"\n1 2 \"right\"\n1 3 \"top\"
1 4 \"left\"\n2 10 \"domain\"\n$EndPhysicalNames\n";
    const NODES: [(u64, [f64; 2]); 5] = [
        (1, [0.0, 0.0]),
        (2, [1.0, 0.0]),
        (3, [1.0, 1.0]),
        (4, [0.0, 1.0]),
        (5, [0.5, 0.5]),
    ];
    const LINES: [[u64; 2]; 4] = [[1, 2], [2, 3], [3, 4], [4, 1]];
    const TRIS: [[u64; 3]; 4] = [[1, 2, 5], [4, 1, 5], [2, 3, 5], [3, 4, 5]];

    /// Gmsh 4.15 output for the unit square at mesh size 1 (a `$Comments` section added).
    fn a22() -> String {
        format!(
            "$MeshFormat\n2.2 0 8\n$EndMeshFormat\n$Comments\nskip $Nodes\n$EndComments\n{NAMES}\
$Nodes\n5\n1 0 0 0\n2 1 0 0\n3 1 1 0\n4 0 1 0\n5 0.5 0.5 0\n$EndNodes\n$Elements\n8
1 1 2 1 1 1 2\n2 1 2 2 2 2 3\n3 1 2 3 3 3 4\n4 1 2 4 4 4 1\n5 2 2 10 1 1 2 5\n6 2 2 10 1 4 1 5
7 2 2 10 1 2 3 5\n8 2 2 10 1 3 4 5\n$EndElements\n"
        )
    }

    /// Gmsh 4.15 output with `Mesh.SaveAll` (so with 1-node point elements).
    fn a41() -> String {
        format!(
            "$MeshFormat\n4.1 0 8\n$EndMeshFormat\n{NAMES}$Entities\n4 4 1 0\n1 0 0 0 0\n2 1 0 0 0
3 1 1 0 0\n4 0 1 0 0\n1 0 0 0 1 0 0 1 1 2 1 -2\n2 1 0 0 1 1 0 1 2 2 2 -3\n3 0 1 0 1 1 0 1 3 2 3 -4
4 0 0 0 0 1 0 1 4 2 4 -1\n1 0 0 0 1 1 0 1 10 4 1 2 3 4\n$EndEntities\n$Nodes\n9 5 1 5\n0 1 0 1\n1
0 0 0\n0 2 0 1\n2\n1 0 0\n0 3 0 1\n3\n1 1 0\n0 4 0 1\n4\n0 1 0\n1 1 0 0\n1 2 0 0\n1 3 0 0\n1 4 0 0
2 1 0 1\n5\n0.5 0.5 0\n$EndNodes\n$Elements\n9 12 1 12\n0 1 15 1\n9 1\n0 2 15 1\n10 2\n0 3 15 1
11 3\n0 4 15 1\n12 4\n1 1 1 1\n1 1 2\n1 2 1 1\n2 2 3\n1 3 1 1\n3 3 4\n1 4 1 1\n4 4 1\n2 1 2 4
5 1 2 5\n6 4 1 5\n7 2 3 5\n8 3 4 5\n$EndElements\n"
        )
    }

    fn i4(v: &[i32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn z8(v: &[u64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn f8(v: &[f64]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
    fn head(v: &str) -> Vec<u8> {
        let mut w = format!("$MeshFormat\n{v} 1 8\n").into_bytes();
        w.extend(i4(&[1]));
        w.extend(format!("\n$EndMeshFormat\n{NAMES}").bytes());
        w
    }

    /// MSH 2.2 binary, elements in one block of lines and one of triangles.
    fn bin22() -> Vec<u8> {
        let mut w = head("2.2");
        w.extend(b"$Nodes\n5\n");
        for (t, [x, y]) in NODES {
            w.extend(i4(&[t as i32]).into_iter().chain(f8(&[x, y, 0.0])));
        }
        w.extend(
            b"\n$EndNodes\n$Elements\n8\n"
                .iter()
                .copied()
                .chain(i4(&[1, 4, 2])),
        );
        for (k, l) in (1..).zip(LINES) {
            w.extend(i4(&[k, k, k, l[0] as i32, l[1] as i32]));
        }
        w.extend(i4(&[2, 4, 2]));
        for (k, t) in (5..).zip(TRIS) {
            w.extend(i4(&[k, 10, 1, t[0] as i32, t[1] as i32, t[2] as i32]));
        }
        w.extend(b"\n$EndElements\n");
        w
    }

    /// MSH 4.1 binary, with a parametric node block and a point element.
    fn bin41() -> Vec<u8> {
        let mut w = head("4.1");
        w.extend(b"$Entities\n".iter().copied().chain(z8(&[0, 4, 1, 0])));
        for k in 1..=4 {
            w.extend([i4(&[k]), f8(&[0.0; 6]), z8(&[1]), i4(&[k]), z8(&[0])].concat());
        }
        w.extend(
            [
                i4(&[1]),
                f8(&[0.0; 6]),
                z8(&[1]),
                i4(&[10]),
                z8(&[4]),
                i4(&[1, 2, 3, 4]),
            ]
            .concat(),
        );
        w.extend(
            b"\n$EndEntities\n$Nodes\n"
                .iter()
                .copied()
                .chain(z8(&[2, 5, 1, 5])),
        );
        w.extend(i4(&[0, 1, 0]).into_iter().chain(z8(&[4, 1, 2, 3, 4])));
        for (_, [x, y]) in &NODES[..4] {
            w.extend(f8(&[*x, *y, 0.0]));
        }
        w.extend([i4(&[2, 1, 1]), z8(&[1, 5]), f8(&[0.5, 0.5, 0.0, 0.5, 0.5])].concat());
        w.extend(
            b"\n$EndNodes\n$Elements\n"
                .iter()
                .copied()
                .chain(z8(&[6, 9, 1, 9])),
        );
        w.extend(i4(&[0, 1, 15]).into_iter().chain(z8(&[1, 9, 1])));
        for (k, l) in (1..).zip(LINES) {
            w.extend(
                i4(&[1, k as i32, 1])
                    .into_iter()
                    .chain(z8(&[1, k, l[0], l[1]])),
            );
        }
        w.extend(i4(&[2, 1, 2]).into_iter().chain(z8(&[4])));
        for (k, t) in (5..).zip(TRIS) {
            w.extend(z8(&[k, t[0], t[1], t[2]]));
        }
        w.extend(b"\n$EndElements\n");
        w
    }

    fn samples() -> [Vec<u8>; 4] {
        [a22().into_bytes(), a41().into_bytes(), bin22(), bin41()]
    }

    fn check(m: &MshMesh) {
        assert_eq!(m.nodes, NODES);
        assert_eq!(
            m.lines,
            (1..).zip(LINES).map(|(k, l)| (l, k)).collect::<Vec<_>>()
        );
        assert_eq!(m.triangles, TRIS.map(|t| (t, 10)));
        let names: Vec<_> = m
            .physical_names
            .iter()
            .map(|p| (p.0, p.1, &p.2[..]))
            .collect();
        let want = [
            (1, 1, "bottom"),
            (1, 2, "right"),
            (1, 3, "top"),
            (1, 4, "left"),
        ];
        assert_eq!(names, [&want[..], &[(2, 10, "domain")]].concat());
    }

    fn msg(text: &str) -> String {
        parse_msh(text.as_bytes()).unwrap_err().message
    }

    #[test]
    fn all_four_formats_agree() {
        for bytes in samples() {
            check(&parse_msh(&bytes).unwrap());
        }
    }

    #[test]
    fn truncated_files_are_errors() {
        for bytes in samples() {
            for cut in 0..bytes.len() {
                let res = parse_msh(&bytes[..cut]);
                let only_ws = bytes[cut..].iter().all(u8::is_ascii_whitespace);
                assert!(only_ws || res.is_err(), "cut at {cut} parsed");
            }
        }
        let a = a41();
        let e = msg(&a[..a.find("6 4 1 5").unwrap()]);
        assert!(
            e.contains("truncated") && e.contains("inside $Elements"),
            "{e}"
        );
        let e = msg(&a[..a.find("$Elements").unwrap()]);
        assert_eq!(e, "missing $Elements section");
    }

    #[test]
    fn higher_order_elements_are_rejected() {
        let want = "element 17 has Gmsh type 9 (6-node second-order triangle); dino supports \
            3-node triangles (type 2) and 2-node boundary lines (type 1): mesh with `-order 1` \
            and no recombination";
        assert_eq!(
            msg(&a22().replace("5 2 2 10 1 1 2 5", "17 9 2 10 1 1 2 5 6 7 8")),
            want
        );
        assert_eq!(msg(&a41().replace("2 1 2 4\n5 ", "2 1 9 4\n17 ")), want);
        let e = msg(&a22().replace("5 2 2 10 1 1 2 5", "5 3 2 10 1 1 2 5 6"));
        assert!(e.contains("type 3 (4-node quadrangle)"), "{e}");
    }

    #[test]
    fn bad_input_gives_clear_messages() {
        let e = msg(&a22().replace("2.2 0 8", "3.0 0 8"));
        assert!(
            e.contains("version `3.0`") && e.contains("MSH 2.2 and 4.1"),
            "{e}"
        );
        let e = msg(&a22().replace("5 0.5 0.5 0", "5 0.5 x 0"));
        assert_eq!(e, "$Nodes, line 21: expected a node y, found `x`");
        let e = msg(&a22().replace("5 0.5 0.5 0", "5 0.5 nan 0"));
        assert!(e.contains("node 5 has a non-finite coordinate"), "{e}");
        let e = msg(&a22().replace("3 4 5\n$End", "3 4 99\n$End"));
        assert_eq!(
            e,
            "element 8 references node tag 99, which is not in $Nodes"
        );
        assert!(msg("$Nodes\n0\n$EndNodes\n").starts_with("missing $MeshFormat"));
        let mut be = bin22();
        be[20..24].reverse();
        let e = parse_msh(&be).unwrap_err().message;
        assert!(
            e.contains("byte offset 20") && e.contains("big-endian"),
            "{e}"
        );
        let e = read_msh(Path::new("/nonexistent/dir/m.msh"))
            .unwrap_err()
            .message;
        assert!(
            e.contains("cannot read Gmsh file /nonexistent/dir/m.msh"),
            "{e}"
        );
    }
}
