//! The `srt-graph` that runs inside containers: it must be a static executable, because images are built
//! on other distributions with other (or no) C libraries. This one, when it is static (a musl build);
//! else the one `SRT_GRAPH_NODE_BINARY` names.

use std::path::{Path, PathBuf};

/// The variable that names a static `srt-graph` for containers.
pub const NODE_BINARY_VAR: &str = "SRT_GRAPH_NODE_BINARY";

pub fn static_node_binary() -> Result<PathBuf, String> {
    let how =
        "build one with `rustup target add x86_64-unknown-linux-musl && cargo build --release \
               --target x86_64-unknown-linux-musl` and run it, or name it in SRT_GRAPH_NODE_BINARY";
    if let Some(p) = std::env::var_os(NODE_BINARY_VAR).map(PathBuf::from) {
        let p = p
            .canonicalize()
            .map_err(|e| format!("{NODE_BINARY_VAR}={}: {e}", p.display()))?;
        return if is_static(&p) {
            Ok(p)
        } else {
            Err(format!(
                "{NODE_BINARY_VAR}={} is not a static executable; {how}",
                p.display()
            ))
        };
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    if is_static(&me) {
        Ok(me)
    } else {
        Err(format!(
            "the node tools inside a container must be a static `srt-graph`, and {} is dynamically linked; {how}",
            me.display()
        ))
    }
}

/// An ELF executable without a program interpreter (`PT_INTERP`) needs no C library at run time; a
/// static-pie one still has `PT_DYNAMIC`, so that is not the test.
pub fn is_static(path: &Path) -> bool {
    let Ok(bytes) = std::fs::read(path) else {
        return false;
    };
    let u16_at = |o: usize| {
        bytes
            .get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        bytes
            .get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
    };
    // 64-bit little-endian ELF only (what this tool is built for).
    if bytes.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return false;
    }
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    const PT_INTERP: u32 = 3;
    (0..count).all(|i| u32_at(phoff + i * size).is_some_and(|t| t != PT_INTERP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_is_not_static() {
        assert!(!is_static(Path::new("/bin/sh")));
        assert!(!is_static(Path::new("/nonexistent")));
        if Path::new("/bin/busybox").is_file() && !Path::new("/bin/busybox").is_symlink() {
            // busybox-static, when installed, is.
            let out = std::process::Command::new("file")
                .arg("/bin/busybox")
                .output();
            if let Ok(o) = out {
                let kind = String::from_utf8_lossy(&o.stdout).to_string();
                assert_eq!(
                    is_static(Path::new("/bin/busybox")),
                    kind.contains("static"),
                    "{kind}"
                );
            }
        }
    }
}
