//! The run journal: one JSON event per line, appended and fsynced, so a crash loses at most the event
//! being written; a torn last line is ignored when reading.
//!
//! The journal keeps disk blocks allocated ahead of its end ([`HEADROOM`]), so that when the run
//! directory's file system fills, the failure, the teardown and the run's end are still recorded.

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        recipe: String,
        orchestrator_pid: u32,
        host: String,
        transport: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        continues: Option<String>,
    },
    StepStarted {
        step: String,
        attempt: u32,
        node: usize,
    },
    /// A process of a step (task or service) is running in its own process group.
    Spawned {
        step: String,
        node: usize,
        pid: i32,
        pgid: i32,
        service: bool,
    },
    StepFinished {
        step: String,
        attempt: u32,
        secs: f64,
    },
    StepFailed {
        step: String,
        attempt: u32,
        reason: String,
        will_retry: bool,
    },
    ServiceExited {
        step: String,
        reason: String,
    },
    ServiceStopped {
        step: String,
    },
    /// A node of the run is gone: why, and the steps that were running on it.
    NodeLost {
        node: String,
        reason: String,
        steps: Vec<String>,
    },
    RunFinished {
        status: RunStatus,
        /// Why a run failed: its first failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Seconds since the Unix epoch.
    pub t: f64,
    #[serde(flatten)]
    pub event: Event,
}

/// Appends go to a writer thread that writes and fsyncs in batches (group commit): the event loop never
/// waits on the disk, and every event is on stable storage one fsync after it was appended. A write
/// error is reported by the next `append` (and by `close`).
pub struct Journal {
    path: PathBuf,
    tx: Option<std::sync::mpsc::Sender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    error: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

/// Bytes kept allocated past the journal's end (a run's teardown writes a few KiB; a full run
/// a few hundred). Renewed once less than half is left.
pub const HEADROOM: u64 = 256 * 1024;

/// Keeps [`HEADROOM`] bytes allocated past `len` once less than half of it is (`allocated_to`: the end
/// of what is already allocated). A file system without `fallocate` (or a full one) leaves it as it is:
/// the journal then works as any file does.
fn keep_headroom(file: &std::fs::File, len: u64, allocated_to: &mut u64) {
    use std::os::fd::AsRawFd;
    if *allocated_to >= len + HEADROOM / 2 {
        return;
    }
    let (Ok(offset), Ok(size)) = (i64::try_from(len), i64::try_from(HEADROOM)) else {
        return;
    };
    let keep_size = nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
    if nix::fcntl::fallocate(file.as_raw_fd(), keep_size, offset, size).is_ok() {
        *allocated_to = len + HEADROOM;
    }
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Journal {
    pub fn open(path: &Path) -> std::io::Result<Journal> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // A crash mid-write leaves a torn last line: end it, so the next event starts a line of its own.
        if last_byte(path)?.is_some_and(|c| c != b'\n') {
            file.write_all(b"\n")?;
        }
        let mut len = file.metadata()?.len();
        let mut allocated_to = 0;
        keep_headroom(&file, len, &mut allocated_to);
        let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let error = std::sync::Arc::new(std::sync::Mutex::new(None));
        let err = error.clone();
        let writer = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = first;
                    while let Ok(more) = rx.try_recv() {
                        batch.extend_from_slice(&more);
                    }
                    match file.write_all(&batch).and_then(|()| file.sync_data()) {
                        Ok(()) => {
                            len += batch.len() as u64;
                            keep_headroom(&file, len, &mut allocated_to);
                        }
                        Err(e) => {
                            if let Ok(mut slot) = err.lock() {
                                slot.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                }
            })?;
        Ok(Journal {
            path: path.to_path_buf(),
            tx: Some(tx),
            writer: Some(writer),
            error,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn failed(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// Appends one event (fsynced by the writer thread in its next batch).
    pub fn append(&mut self, event: Event) -> std::io::Result<()> {
        if let Some(e) = self.failed() {
            return Err(std::io::Error::other(e));
        }
        let mut line =
            serde_json::to_vec(&Record { t: now(), event }).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(line).ok())
            .ok_or_else(|| std::io::Error::other("journal writer stopped"))
    }

    /// Waits until everything appended is written and fsynced.
    pub fn close(&mut self) -> std::io::Result<()> {
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
        match self.failed() {
            Some(e) => Err(std::io::Error::other(e)),
            None => Ok(()),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn last_byte(path: &Path) -> std::io::Result<Option<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    if f.metadata()?.len() == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::End(-1))?;
    let mut b = [0u8; 1];
    f.read_exact(&mut b)?;
    Ok(Some(b[0]))
}

/// Reads every complete event; a torn or corrupt line (a crash mid-write) is skipped.
pub fn read(path: &Path) -> std::io::Result<Vec<Record>> {
    let bytes = std::fs::read(path)?;
    Ok(bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks are allocated past the journal's end (where the file system allows it), and the length
    /// a reader sees is only what was written.
    #[test]
    fn headroom_is_allocated_past_the_end() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let mut j = Journal::open(&p).unwrap();
        j.append(Event::ServiceStopped { step: "a".into() })
            .unwrap();
        j.close().unwrap();
        let m = std::fs::metadata(&p).unwrap();
        let written = std::fs::read(&p).unwrap();
        assert_eq!(m.len(), written.len() as u64);
        let probe = d.path().join("probe");
        let f = std::fs::File::create(&probe).unwrap();
        let fallocate_works = {
            use std::os::fd::AsRawFd;
            let keep = nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
            nix::fcntl::fallocate(f.as_raw_fd(), keep, 0, 4096).is_ok()
        };
        if fallocate_works {
            assert!(m.blocks() * 512 >= HEADROOM, "{} blocks", m.blocks());
        }
    }

    #[test]
    fn torn_last_line_is_ignored() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("journal.jsonl");
        let mut j = Journal::open(&p).unwrap();
        j.append(Event::StepStarted {
            step: "a".into(),
            attempt: 1,
            node: 0,
        })
        .unwrap();
        drop(j);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"t\":1.0,\"event\":\"step_fin").unwrap();
        let records = read(&p).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(
            records[0].event,
            Event::StepStarted {
                step: "a".into(),
                attempt: 1,
                node: 0
            }
        );
    }
}
