//! Node loss on the Slurm executor: a node is lost when Slurm says so (DOWN, DRAIN, FAIL, or its
//! slurmd not responding) or when its node agent stops answering the heartbeat (a dead kernel or
//! NIC, a network cut: its srun's connection hangs rather than breaks). One thread per run polls one
//! `scontrol show node` for every node and pings every host agent; the scheduler reads the losses.
//!
//! A slurmd that dies alone leaves its slurmstepd (and the processes, and the agent's pipe) alive:
//! the agent, which saw its node's slurmd when it started, says so in its answer to the ping; where it
//! cannot see slurmd, Slurm notices on its next ping of the node (`SlurmdTimeout` paces those: tens of
//! seconds). A dead node is seen by the heartbeat within `POLL + ANSWER_LIMIT`.

use crate::agent::{Agent, Answer};
use crate::remote::run_captured;
use crate::transport::{Losses, NodeLoss};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often Slurm is asked and the agents pinged.
const POLL: Duration = Duration::from_secs(2);
/// An agent that has not answered a ping for this long has lost its node.
const ANSWER_LIMIT: Duration = Duration::from_secs(6);
const SCONTROL_LIMIT: Duration = Duration::from_secs(10);
/// How long after the pings their answers are read (a live agent answers in milliseconds).
const ANSWER_READ: Duration = Duration::from_millis(300);

/// The host agents to ping: `(logical node, agent)` of those running now.
pub type Agents = Box<dyn Fn() -> Vec<(usize, Arc<Agent>)> + Send>;

/// The running watch; stops when dropped.
pub struct Watch {
    stop: Arc<AtomicBool>,
    losses: Losses,
}

impl Watch {
    /// Watches `names` (logical node → Slurm node name).
    pub fn start(names: Vec<String>, agents: Agents) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let losses = Losses::default();
        let (s, l) = (stop.clone(), losses.clone());
        std::thread::spawn(move || watch(&names, &agents, &s, &l));
        Watch { stop, losses }
    }

    /// Every loss seen so far, in the order seen.
    pub fn losses(&self) -> Vec<NodeLoss> {
        self.losses.all()
    }

    /// Whether `node` was lost.
    pub fn is_lost(&self, node: usize) -> bool {
        self.losses.has(node)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(names: &[String], agents: &Agents, stop: &AtomicBool, losses: &Losses) {
    let mut distinct: Vec<&str> = Vec::new();
    for n in names {
        if !distinct.contains(&n.as_str()) {
            distinct.push(n);
        }
    }
    let list = distinct.join(",");
    // Per agent: when its oldest unanswered ping was sent, and the answer's channel.
    let mut pending: HashMap<usize, (Instant, Answer)> = HashMap::new();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let mut found: Vec<(String, String)> = Vec::new();
        // Slurm's word, every other round (a process each time; the heartbeat is in-process). A
        // controller that does not answer is no loss (it may be restarting).
        round += 1;
        match (round % 2 == 1).then(|| {
            run_captured(
                std::process::Command::new("scontrol").args(["show", "node", "-o", &list]),
                SCONTROL_LIMIT,
            )
        }) {
            Some(Ok(out)) => found.extend(lost_in_scontrol(&out)),
            Some(Err(e)) => tracing::debug!("scontrol show node: {e}"),
            None => {}
        }
        // The heartbeat: a ping to every agent not already waited for, their answers read a moment
        // later. One whose ping is unanswered past the limit has lost its node; one that answers
        // with trouble (its slurmd gone) too. An agent that ended is no node loss (its processes
        // fail by its name).
        let running = agents();
        let mut to_ping: Vec<(usize, &Agent)> = Vec::new();
        for (k, agent) in &running {
            if agent.lost().is_some() {
                pending.remove(k);
            } else if !pending.contains_key(k) {
                to_ping.push((*k, agent));
            }
        }
        let asked: Vec<&Agent> = to_ping.iter().map(|(_, a)| *a).collect();
        let now = Instant::now();
        for ((k, _), answer) in to_ping.iter().zip(Agent::ping_all(&asked)) {
            if let Ok(rx) = answer {
                pending.insert(*k, (now, rx));
            }
        }
        std::thread::sleep(ANSWER_READ);
        pending.retain(|k, (since, rx)| {
            let trouble = match rx.try_recv() {
                Ok(Ok((_, trouble))) if trouble.is_empty() => return false,
                Ok(Ok((_, trouble))) => trouble,
                Ok(Err(_)) | Err(std::sync::mpsc::TryRecvError::Disconnected) => return false,
                Err(std::sync::mpsc::TryRecvError::Empty) if since.elapsed() < ANSWER_LIMIT => {
                    return true
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => format!(
                    "its node agent has not answered for {}s",
                    ANSWER_LIMIT.as_secs()
                ),
            };
            if let Some(name) = names.get(*k) {
                found.push((name.clone(), trouble));
            }
            false
        });
        for (name, reason) in found {
            losses.record(names, &name, &reason);
        }
        std::thread::sleep(POLL.saturating_sub(ANSWER_READ));
    }
}

/// `(node, why)` for each node `scontrol show node -o` shows down, drained, failed or not
/// responding. States are `BASE[+FLAG…]`, a trailing `*` meaning not responding.
pub fn lost_in_scontrol(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let field = |key: &str| {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(key))
                .map(str::to_string)
        };
        let (Some(name), Some(state)) = (field("NodeName="), field("State=")) else {
            continue;
        };
        // `Reason=` runs to ` [user@time]` (it may hold spaces).
        let reason = line
            .split_once(" Reason=")
            .map(|(_, r)| r.split(" [").next().unwrap_or(r).trim().to_string())
            .filter(|r| !r.is_empty());
        let parts: Vec<&str> = state.trim_end_matches('*').split('+').collect();
        let has = |p: &str| parts.contains(&p);
        let why = if state.ends_with('*') || has("NOT_RESPONDING") {
            Some("slurmd not responding".to_string())
        } else if has("DOWN") || has("FAIL") || has("FAILING") {
            Some(format!("set {}", parts[0]))
        } else if has("DRAIN") || has("DRAINING") || has("DRAINED") {
            Some("drained".to_string())
        } else {
            None
        };
        if let Some(why) = why {
            // Slurm's own reason for a node it stopped hearing from says the same again.
            let reason = reason.filter(|r| !r.eq_ignore_ascii_case("not responding"));
            out.push((
                name,
                match reason {
                    Some(r) => format!("{why}: {r}"),
                    None => why,
                },
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::lost_in_scontrol;

    #[test]
    fn states_that_mean_a_node_is_gone() {
        let text = "NodeName=node1 Arch=x86_64 State=MIXED ThreadsPerCore=1\n\
            NodeName=node2 Arch=x86_64 State=IDLE+DRAIN ThreadsPerCore=1 Reason=bad dimm [root@2026-12-07T09:00:00]\n\
            NodeName=node3 State=DOWN+NOT_RESPONDING Reason=Not responding [slurm@2026-12-07T09:00:00]\n\
            NodeName=node4 State=ALLOCATED* ThreadsPerCore=1\n\
            NodeName=node5 State=DOWN Reason=gone [root@t]\n\
            NodeName=node6 State=MIXED+COMPLETING\n";
        assert_eq!(
            lost_in_scontrol(text),
            vec![
                ("node2".to_string(), "drained: bad dimm".to_string()),
                ("node3".to_string(), "slurmd not responding".to_string()),
                ("node4".to_string(), "slurmd not responding".to_string()),
                ("node5".to_string(), "set DOWN: gone".to_string()),
            ]
        );
    }
}
