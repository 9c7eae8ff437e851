//! Output files are written completely or not at all, and a path that cannot be
//! written fails before the measurements, not after them.
//!
//! [`OutFile::reserve`] creates the destination's directory if needed (as `planner`
//! does for its `--out`) and a temporary file beside the destination when the
//! command starts; [`OutFile::commit`] writes it and renames it into place. A command
//! that fails in between (or is stopped) leaves no partial file under the real name,
//! and dropping an uncommitted reservation removes the temporary file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A destination path with its temporary file already created.
pub struct OutFile {
    path: PathBuf,
    tmp: PathBuf,
    committed: bool,
}

impl OutFile {
    /// Creates `path`'s directory if it is missing and the temporary file beside
    /// `path` ([`planner::files::partial_path`]), failing with the path in the message when either cannot be made.
    pub fn reserve(path: &Path) -> Result<OutFile> {
        path.file_name()
            .with_context(|| format!("--out {}: expected a file name", path.display()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = planner::files::partial_path(path);
        File::create(&tmp).with_context(|| format!("cannot create {}", path.display()))?;
        Ok(OutFile {
            path: path.to_path_buf(),
            tmp,
            committed: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `bytes` to the temporary file and renames it to the destination, which
    /// it returns.
    pub fn commit(mut self, bytes: &[u8]) -> Result<PathBuf> {
        let mut file = File::create(&self.tmp)
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path)
            .with_context(|| format!("cannot move {} into place", self.path.display()))?;
        self.committed = true;
        Ok(std::mem::take(&mut self.path))
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_is_made_and_an_impossible_one_fails_at_reservation() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        drop(OutFile::reserve(&dir.join("new").join("rows.csv")).unwrap());
        assert!(dir.join("new").is_dir());
        // A directory cannot be made inside a plain file.
        std::fs::write(dir.join("file"), "").unwrap();
        let err = OutFile::reserve(&dir.join("file").join("rows.csv"))
            .err()
            .expect("reservation fails");
        assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
    }

    #[test]
    fn only_a_committed_file_appears_under_its_name() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let path = dir.join("rows.csv");
        // Dropped without a commit: nothing is left, not even the temporary file.
        drop(OutFile::reserve(&path).unwrap());
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 0);
        // Committed: the bytes under the real name, and no temporary file.
        OutFile::reserve(&path)
            .unwrap()
            .commit(b"a,b\n1,2\n")
            .unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a,b\n1,2\n");
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), 1);
    }
}
