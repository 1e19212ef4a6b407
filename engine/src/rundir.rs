//! The run directory: everything a run records, laid out so a later `resume`, `status` or `down` — or a
//! person — can read it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1.write_all(bytes)?;
    tmp.1.sync_data()?;
    std::fs::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("file");
    for n in 0..1000u32 {
        let p = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
        {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("cannot create a temporary file"))
}

/// Below this much space left, a failure in the run is put down to the run directory's file system.
const FULL_BELOW: u64 = 1 << 20;

/// `Some(why)` when the file system holding `run_dir` is full (less than 1 MiB left to its users),
/// said in the words `write(2)` uses, so a failing step's cause is named where it shows.
pub fn disk_full(run_dir: &Path) -> Option<String> {
    let s = nix::sys::statvfs::statvfs(run_dir).ok()?;
    let free = s.blocks_available().saturating_mul(s.fragment_size());
    (free < FULL_BELOW).then(|| {
        format!(
            "the run directory's file system is full ({} KiB left): No space left on device",
            free / 1024
        )
    })
}

/// Where a step's log lives: `logs/<step id with / as _>.log`.
pub fn log_path(run_dir: &Path, step: &str) -> PathBuf {
    run_dir
        .join("logs")
        .join(format!("{}.log", step.replace('/', "_")))
}

/// The last `n` lines of a step's log, for failure messages.
pub fn log_tail(run_dir: &Path, step: &str, n: usize) -> String {
    log_tail_of(&log_path(run_dir, step), n)
}

/// The last `n` lines of a log file, indented.
pub fn log_tail_of(path: &Path, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    {l}\n"))
        .collect()
}

/// `runs/<name>-<UTC timestamp>`; the name is reduced to characters safe in a path.
pub fn default_run_dir(base: &Path, recipe: &str) -> PathBuf {
    let safe: String = recipe
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    base.join(format!("{safe}-{}", utc_stamp()))
}

/// `default_run_dir`, with `-2`, `-3`, … appended while that directory exists: several jobs of one
/// recipe submitted in the same second (an override file's variants) each get their own.
pub fn unused_run_dir(base: &Path, recipe: &str) -> PathBuf {
    let first = default_run_dir(base, recipe);
    let mut dir = first.clone();
    let mut n = 2;
    while dir.exists() {
        dir = PathBuf::from(format!("{}-{n}", first.display()));
        n += 1;
    }
    dir
}

/// Now in UTC: (year, month, day, hour, minute, second, microsecond).
fn utc_now() -> (i64, u32, u32, u64, u64, u64, u32) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    (
        y,
        m,
        d,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        now.subsec_micros(),
    )
}

/// `20261125T183955Z`
pub fn utc_stamp() -> String {
    let (y, m, d, h, mi, s, _) = utc_now();
    format!("{y:04}{m:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// The current UTC time as ISO 8601 with microseconds (`2026-11-26T19:21:36.123456Z`), as Python's
/// `datetime.now(timezone.utc).isoformat()` with `Z`.
pub fn utc_iso8601() -> String {
    let (y, m, d, h, mi, s, us) = utc_now();
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}Z")
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_417), (2025, 11, 25));
    }

    #[test]
    fn atomic_write_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"22").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"22");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
