//! Host loss on the ssh executor: a host is lost when it stops answering. Each host's first master
//! sends keepalives (`ServerAliveInterval`) and exits when they go unanswered; one thread per run
//! checks every `POLL` that each master still listens on its control socket (a connect, in-process:
//! no process per check), and for one that is gone tries a fresh connection with a short timeout.
//! A host that answers it only lost its connection (the next session reopens one: not a loss); one
//! that does not is lost.

use crate::transport::{Losses, NodeLoss};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const POLL: Duration = Duration::from_secs(2);

/// Tries a fresh connection to a host (`Ok`: it answers; `Err`: what ssh said).
pub type Probe = Box<dyn Fn(&str) -> Result<(), String> + Send>;

/// The running watch; stops when dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    losses: Losses,
}

impl Watch {
    /// Watches `hosts` (logical node → ssh destination), each through `sockets` (host → the control
    /// socket of its first master).
    pub fn start(hosts: Vec<String>, sockets: Vec<(String, PathBuf)>, probe: Probe) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let losses = Losses::default();
        let (s, l) = (stop.clone(), losses.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                for (host, socket) in &sockets {
                    if l.has_name(host) || std::os::unix::net::UnixStream::connect(socket).is_ok() {
                        continue;
                    }
                    // The master is gone (a dropped connection, or keepalives unanswered).
                    if s.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Err(said) = probe(host) {
                        l.record(&hosts, host, &format!("host not answering: {said}"));
                    }
                }
                std::thread::sleep(POLL);
            }
        });
        Watch { stop, losses }
    }

    pub fn losses(&self) -> Vec<NodeLoss> {
        self.losses.all()
    }

    pub fn is_lost(&self, node: usize) -> bool {
        self.losses.has(node)
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}
