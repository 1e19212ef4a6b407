//! What the ssh and Slurm transports share: the wrapper every remote command runs under, the process handle
//! of a command started through a local client (`ssh`, `srun`), and short "node operations" (signal, probe)
//! run on a node through the same client.
//!
//! The wrapper is a constant POSIX `sh` script; recipe values only ever reach it as positional arguments,
//! so nothing in them is parsed by a shell on the node. It reports the command's pid and process group on
//! its first line (`srt-graph-pid PID PGID`), so teardown, `down` and `resume` can signal and probe the
//! group on the node later, then `exec`s the command (same pid). SIGPIPE is ignored from there on: a
//! service whose log stream is cut (orchestrator gone, ssh dropped) keeps serving and can be adopted.

use crate::process::{copy_output, drain, ChildProcess};
use crate::transport::{Process, TransportError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What every wrapper does once `d` holds the working directory and `$@` the command: `/proc/$$/stat` field
/// 5 is the process group (`sh`'s own command name has no spaces, so plain field splitting reads it).
macro_rules! wrapper_body {
    () => {
        r#"cd -- "$d" || exit 127; read -r _ _ _ _ g _ </proc/$$/stat; echo "srt-graph-pid $$ $g"; trap '' PIPE; exec "$@""#
    };
}

/// `$1` = working directory, the rest = the command.
const WRAPPER: &str = concat!("d=$1; shift; ", wrapper_body!());

/// The wrapper that first takes its environment from standard input: `export NAME='value'` lines, quoted
/// here (`env_script`), so values never appear in an argv on either end of the connection.
/// A script cut short (its connection dropped while it was sent) would start the command without its
/// environment, and without the run's tags `down` finds processes by: it must end with `ENV_END`.
const WRAPPER_ENV_ON_STDIN: &str = concat!(
    r#"d=$1; shift; e=$(cat) || exit 126; case $e in *'# srt-graph env end') ;; *) echo "srt-graph: the step's environment did not arrive whole; not started" >&2; exit 126;; esac; eval "$e" || exit 126; unset e; "#,
    wrapper_body!()
);

/// The last line of every `env_script`.
const ENV_END: &str = "# srt-graph env end\n";

/// The argv that runs `argv` under the wrapper in `cwd` (`.` = wherever the transport starts).
pub fn wrapped(cwd: Option<&str>, argv: &[String]) -> Vec<String> {
    wrapped_with(WRAPPER, cwd, argv)
}

/// As `wrapped`, for a command whose environment follows on standard input (see `env_script`).
pub fn wrapped_env_on_stdin(cwd: Option<&str>, argv: &[String]) -> Vec<String> {
    wrapped_with(WRAPPER_ENV_ON_STDIN, cwd, argv)
}

/// `export NAME='value'` lines for `WRAPPER_ENV_ON_STDIN`: names must be shell identifiers, values are
/// quoted by the same quoting as every remote argument. It starts with this process's umask, so a step
/// creates files on the node as one started here (or by srun, which carries the umask) would.
pub fn env_script(
    env: &std::collections::BTreeMap<String, String>,
) -> Result<String, TransportError> {
    let mut script = String::new();
    if let Some(mask) = current_umask() {
        script.push_str(&format!("umask {mask:03o}\n"));
    }
    for (name, value) in env {
        let identifier = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(TransportError::BadEnvName(name.clone()));
        }
        let quoted = shlex::try_quote(value).map_err(|_| TransportError::Unquotable)?;
        script.push_str(&format!("export {name}={quoted}\n"));
    }
    script.push_str(ENV_END);
    Ok(script)
}

/// This process's umask (Linux reports it in /proc/self/status; reading it must not change it).
fn current_umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(field.trim(), 8).ok()
}

fn wrapped_with(wrapper: &str, cwd: Option<&str>, argv: &[String]) -> Vec<String> {
    let mut out = vec![
        "sh".to_string(),
        "-c".to_string(),
        wrapper.to_string(),
        "srt-graph-step".to_string(),
        cwd.unwrap_or(".").to_string(),
    ];
    out.extend(argv.iter().cloned());
    out
}

/// Quotes an argv for a remote POSIX shell: the one place a command becomes a string.
pub fn shell_line(argv: &[String]) -> Result<String, TransportError> {
    shlex::try_join(argv.iter().map(String::as_str)).map_err(|_| TransportError::Unquotable)
}

/// Starts the copiers of a client's stdout and stderr into `log` and waits for the wrapper's pid line
/// (printed on stdout). If the client exits first, its exit and last lines come back as the error.
pub async fn start_piped(
    mut child: tokio::process::Child,
    log: &std::path::Path,
    node: &str,
    classify: fn(&str, &str) -> TransportError,
    slot: Option<Box<dyn Send + Sync>>,
    redact: &crate::secret::Redactor,
) -> Result<Box<dyn Process>, TransportError> {
    let file = crate::transport::open_log(log).await?;
    let log_file = Arc::new(tokio::sync::Mutex::new(file));
    let last = Arc::new(Mutex::new(String::new()));
    let (pid_tx, mut pid_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut copiers = copy_output(&mut child, log_file, &last, Some(pid_tx), redact);
    let mut ids = tokio::select! {
        biased;
        Some(ids) = pid_rx.recv() => Some(ids),
        _ = child.wait() => None,
    };
    if ids.is_none() {
        // Exited: a fast command may have printed its pid line just before (its copier drains now).
        drain(std::mem::take(&mut copiers)).await;
        ids = pid_rx.try_recv().ok();
    }
    match ids {
        Some((pid, pgid)) => Ok(Box::new(ChildProcess {
            child,
            pid,
            pgid,
            last,
            copiers,
            follower: None,
            slot,
        })),
        None => {
            let tail = crate::rundir::log_tail_of(log, 6);
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            Err(classify(node, &format!("{status}\n{tail}")))
        }
    }
}

/// Runs a short command to completion (a node operation); stdout on success, else stderr as the error.
/// Bounded: a wedged connection must not hang teardown.
pub fn run_captured(cmd: &mut std::process::Command, limit: Duration) -> Result<String, String> {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                let mut err = String::new();
                if let Some(mut o) = child.stdout.take() {
                    let _ = o.read_to_string(&mut out);
                }
                if let Some(mut e) = child.stderr.take() {
                    let _ = e.read_to_string(&mut err);
                }
                return if status.success() {
                    Ok(out)
                } else {
                    Err(format!("{status}: {}", err.trim()))
                };
            }
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", limit.as_secs()));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// A transport that can run a short command on a node and read what it prints.
pub trait NodeShell: Send + Sync {
    fn run_on(&self, node: usize, argv: &[String]) -> Result<String, String>;
    /// `srt-graph` on the nodes (it answers the node operations below).
    fn node_tool(&self) -> &str;
}

fn node_op(t: &dyn NodeShell, node: usize, args: &[String]) -> Result<String, String> {
    let mut argv = vec![t.node_tool().to_string(), "node-op".to_string()];
    argv.extend(args.iter().cloned());
    t.run_on(node, &argv).inspect_err(|e| {
        tracing::warn!(node, op = %args.join(" "), "node operation failed: {e}");
    })
}

pub fn signal_group(t: &dyn NodeShell, node: usize, pgid: i32, signal: i32) -> std::io::Result<()> {
    if pgid <= 1 {
        return Ok(());
    }
    node_op(
        t,
        node,
        &["signal".into(), pgid.to_string(), signal.to_string()],
    )
    .map(|_| ())
    .map_err(std::io::Error::other)
}

pub fn group_alive(t: &dyn NodeShell, node: usize, pgid: i32) -> bool {
    pgid > 1
        && node_op(t, node, &["alive".into(), pgid.to_string()])
            .is_ok_and(|out| out.trim() == "alive")
}

pub fn tagged_groups(t: &dyn NodeShell, node: usize, run_dir: &str) -> Vec<(String, i32)> {
    node_op(t, node, &["tagged".into(), run_dir.into()])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (step, pgid) = l.rsplit_once('\t')?;
            Some((step.to_string(), pgid.trim().parse().ok()?))
        })
        .collect()
}

pub fn pid_file_group(t: &dyn NodeShell, node: usize, pid_file: &str) -> Option<i32> {
    node_op(t, node, &["pid-file".into(), pid_file.into()])
        .ok()?
        .trim()
        .parse()
        .ok()
}

pub fn port_holder(t: &dyn NodeShell, node: usize, addr: &str, port: u16) -> Option<String> {
    let out = node_op(
        t,
        node,
        &["port-holder".into(), addr.into(), port.to_string()],
    )
    .ok()?;
    let out = out.trim();
    (!out.is_empty()).then(|| out.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::parse_pid_line;

    #[test]
    fn pid_line_round_trip() {
        assert_eq!(parse_pid_line("srt-graph-pid 12 10\n"), Some((12, 10)));
        assert_eq!(parse_pid_line("hello 12 10"), None);
        assert_eq!(parse_pid_line("srt-graph-pid x 10"), None);
    }

    #[test]
    fn wrapper_runs_argv_verbatim_in_its_own_group_and_reports_it() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        let nasty = format!(
            "$(touch {0}) `touch {0}`; touch {0} \"'\n&& touch {0}",
            canary.display()
        );
        let argv = wrapped(
            Some(dir.path().to_str().unwrap()),
            &[
                "printf".into(),
                "%s|%s".into(),
                nasty.clone(),
                "$HOME".into(),
            ],
        );
        // Through a shell line, as ssh sends it.
        let line = shell_line(&argv).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&line)
            .process_group(0)
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let (first, rest) = text.split_once('\n').unwrap();
        let (pid, pgid) = parse_pid_line(first).unwrap();
        assert!(pid > 1 && pgid > 1);
        assert_eq!(rest, format!("{nasty}|$HOME"));
        assert!(!canary.exists());
    }

    #[test]
    fn env_on_stdin_reaches_the_command_verbatim_and_never_its_argv() {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary");
        let value = format!("hf_$(touch {0}) `touch {0}`; '\"\n&& x", canary.display());
        let env: std::collections::BTreeMap<String, String> =
            [("HF_TOKEN".to_string(), value.clone())].into();
        let argv = wrapped_env_on_stdin(
            None,
            &["sh".into(), "-c".into(), "printf %s \"$HF_TOKEN\"".into()],
        );
        let line = shell_line(&argv).unwrap();
        assert!(!line.contains("hf_"), "{line}");
        // The wrapped command line run by a shell, `input` on its standard input.
        let run = |input: &str| {
            use std::io::Write;
            let mut child = std::process::Command::new("sh")
                .arg("-c")
                .arg(&line)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        };
        let out = run(&env_script(&env).unwrap());
        let text = String::from_utf8(out.stdout).unwrap();
        let (_, rest) = text.split_once('\n').unwrap();
        assert_eq!(rest, value);
        assert!(!canary.exists());
        // Cut short (the marker missing): refused, not started without its environment.
        let script = env_script(&env).unwrap();
        let out = run(&script[..script.len() - ENV_END.len()]);
        assert_eq!(out.status.code(), Some(126));
        assert!(
            String::from_utf8_lossy(&out.stdout).is_empty(),
            "nothing started"
        );
        let bad: std::collections::BTreeMap<String, String> =
            [("A;B".to_string(), "x".to_string())].into();
        assert!(matches!(
            env_script(&bad),
            Err(TransportError::BadEnvName(_))
        ));
    }

    use std::os::unix::process::CommandExt;
}
