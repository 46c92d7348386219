//! Resumable chunked rows. A long computation of rows `start..end` (samples, states) is cut into
//! contiguous chunks; each chunk's files (one per named array: m, q, J, …) are written
//! atomically (temporary file + rename, [`crate::io::write_atomic`]), then its record, which
//! lists the files with their checksums. The record's presence marks the chunk complete: on
//! restart a chunk whose record reads and whose files match their checksums is kept
//! ([`Stored::Verified`]), any other is computed again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::io::{checksum, write_atomic};

/// One file of a chunk: its name in the folder and the checksum of its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    pub name: String,
    pub checksum: String,
}

/// A chunk record: it lists the chunk's files by key ("m", "q", "J", …).
pub trait ChunkFiles: Serialize + DeserializeOwned {
    /// Key → file.
    fn files(&self) -> &BTreeMap<String, FileRecord>;
}

/// The plain chunk record: rows `start..end` and their files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    pub files: BTreeMap<String, FileRecord>,
}

impl ChunkFiles for Chunk {
    fn files(&self) -> &BTreeMap<String, FileRecord> {
        &self.files
    }
}

/// What a folder holds of one chunk.
#[derive(Debug)]
pub enum Stored<R> {
    /// No record: never written (or interrupted before its record).
    Missing,
    /// The record and every file verify.
    Verified(R),
    /// A record that does not parse, or a file missing or not matching its checksum.
    Corrupt,
}

/// A folder of resumable chunks.
#[derive(Debug, Clone)]
pub struct ChunkStore {
    dir: PathBuf,
}

impl ChunkStore {
    /// Opens (creating it) the folder `dir`, removing the temporary files of writers that were
    /// killed (one run writes a folder at a time).
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(ChunkStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The contiguous chunks `(s, e)` of `size` rows covering `start..end` (the last may be shorter).
    pub fn ranges(start: usize, end: usize, size: usize) -> Vec<(usize, usize)> {
        (start..end)
            .step_by(size.max(1))
            .map(|s| (s, (s + size.max(1)).min(end)))
            .collect()
    }

    /// True when every file of `files` exists in the folder with its recorded checksum.
    pub fn files_verify(&self, files: &BTreeMap<String, FileRecord>) -> bool {
        files.values().all(|f| {
            std::fs::read(self.dir.join(&f.name)).is_ok_and(|b| checksum::hex(&b) == f.checksum)
        })
    }

    /// The chunk recorded in `record` (a file name in the folder), verified.
    pub fn stored<R: ChunkFiles>(&self, record: &str) -> Stored<R> {
        let Ok(text) = std::fs::read_to_string(self.dir.join(record)) else {
            return Stored::Missing;
        };
        match serde_json::from_str::<R>(&text) {
            Ok(r) if self.files_verify(r.files()) => Stored::Verified(r),
            _ => Stored::Corrupt,
        }
    }

    /// [`Self::stored`] with the bytes of the verified files, by key.
    pub fn load<R: ChunkFiles>(&self, record: &str) -> Stored<(R, BTreeMap<String, Vec<u8>>)> {
        let Ok(text) = std::fs::read_to_string(self.dir.join(record)) else {
            return Stored::Missing;
        };
        let Ok(r) = serde_json::from_str::<R>(&text) else {
            return Stored::Corrupt;
        };
        let mut bytes = BTreeMap::new();
        for (key, f) in r.files() {
            match std::fs::read(self.dir.join(&f.name)) {
                Ok(b) if checksum::hex(&b) == f.checksum => {
                    bytes.insert(key.clone(), b);
                }
                _ => return Stored::Corrupt,
            }
        }
        Stored::Verified((r, bytes))
    }

    /// Writes the files of a chunk atomically, `(key, file name, bytes)` each, and returns their
    /// records (to put in the chunk record).
    pub fn write_files<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a str, String, Vec<u8>)>,
    ) -> Result<BTreeMap<String, FileRecord>> {
        let mut records = BTreeMap::new();
        for (key, name, bytes) in files {
            write_atomic(self.dir.join(&name), |w| w.write_all(&bytes))?;
            let checksum = checksum::hex(&bytes);
            records.insert(key.to_string(), FileRecord { name, checksum });
        }
        Ok(records)
    }

    /// Writes the chunk record `record` (pretty JSON) atomically: the chunk is complete.
    pub fn commit<R: ChunkFiles>(&self, record: &str, value: &R) -> Result<()> {
        let text = serde_json::to_string_pretty(value).expect("records serialize");
        write_atomic(self.dir.join(record), |w| w.write_all(text.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_chunk(store: &ChunkStore, s: usize, e: usize) -> Chunk {
        let rows: Vec<u8> = (s..e).map(|i| i as u8).collect();
        let files = store
            .write_files([("m", format!("m_{s}.bin"), rows)])
            .unwrap();
        let chunk = Chunk {
            start: s,
            end: e,
            files,
        };
        store.commit(&format!("chunk_{s}.json"), &chunk).unwrap();
        chunk
    }

    /// Runs over 0..10 in chunks of 4, computing only chunks not stored; returns those computed.
    fn run(store: &ChunkStore) -> Vec<usize> {
        let mut computed = Vec::new();
        for (s, e) in ChunkStore::ranges(0, 10, 4) {
            match store.stored::<Chunk>(&format!("chunk_{s}.json")) {
                Stored::Verified(c) => assert_eq!((c.start, c.end), (s, e)),
                Stored::Missing | Stored::Corrupt => {
                    write_chunk(store, s, e);
                    computed.push(s);
                }
            }
        }
        computed
    }

    #[test]
    fn resume_keeps_verified_chunks_and_redoes_corrupted_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".m_0.bin.1-0.tmp"), b"killed").unwrap();
        let store = ChunkStore::open(dir.path()).unwrap();
        assert!(
            !dir.path().join(".m_0.bin.1-0.tmp").exists(),
            "stale temporary removed"
        );
        assert_eq!(ChunkStore::ranges(0, 10, 4), vec![(0, 4), (4, 8), (8, 10)]);
        assert_eq!(run(&store), vec![0, 4, 8]);
        assert_eq!(run(&store), Vec::<usize>::new(), "all verified");
        // a corrupted file and a missing record are redone, the rest kept
        std::fs::write(dir.path().join("m_4.bin"), b"xxxx").unwrap();
        std::fs::remove_file(dir.path().join("chunk_8.json")).unwrap();
        assert!(matches!(
            store.stored::<Chunk>("chunk_4.json"),
            Stored::Corrupt
        ));
        assert_eq!(run(&store), vec![4, 8]);
        match store.load::<Chunk>("chunk_4.json") {
            Stored::Verified((c, bytes)) => {
                assert_eq!(c.end, 8);
                assert_eq!(bytes["m"], vec![4, 5, 6, 7]);
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(dir.path().join("chunk_0.json"), b"{not json").unwrap();
        assert!(matches!(
            store.load::<Chunk>("chunk_0.json"),
            Stored::Corrupt
        ));
    }
}
