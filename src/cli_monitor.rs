//! `srt-graph monitor`: the live terminal UI (ratatui) over one or more run directories, and its plain-text
//! form (`--once`). Both draw the same `Snapshot`s, re-read from the run directories every second.

use crate::error::{CliError, CliResult};
use clap::Args;
use srt_graph_results::snapshot::{self, Snapshot, StepState, StepView};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct MonitorArgs {
    /// Run directories (default: the 4 newest under ./runs).
    pub run_dirs: Vec<PathBuf>,
    /// Print the state once as plain text and exit (for scripts).
    #[arg(long)]
    pub once: bool,
    /// Lines of the selected step's log to show.
    #[arg(long, default_value_t = 12)]
    pub log_lines: usize,
    /// Only the runs with this tag (`--tags` of run, submit, apply); repeat for any of several.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

fn newest_runs(tags: &[String]) -> Vec<PathBuf> {
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir("runs")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|d| d.path().join("plan.json").is_file())
        .filter(|d| srt_graph_results::job::tagged(&d.path(), tags))
        .filter_map(|d| Some((d.metadata().ok()?.modified().ok()?, d.path())))
        .collect();
    dirs.sort();
    dirs.into_iter().rev().take(4).map(|(_, p)| p).collect()
}

/// Each run's snapshot now (an unreadable run is reported in its place).
pub fn snapshots(dirs: &[PathBuf]) -> Vec<Result<snapshot::Snapshot, String>> {
    dirs.iter()
        .map(|d| {
            let alive = crate::run_dir::live_orchestrator(d).is_some();
            snapshot::read(d, alive).map_err(|e| e.to_string())
        })
        .collect()
}

pub fn monitor(args: &MonitorArgs) -> CliResult {
    let dirs: Vec<PathBuf> = if args.run_dirs.is_empty() {
        newest_runs(&args.tags)
    } else {
        let tagged = |d: &&PathBuf| srt_graph_results::job::tagged(d, &args.tags);
        args.run_dirs.iter().filter(tagged).cloned().collect()
    };
    if dirs.is_empty() {
        let which = if args.tags.is_empty() {
            String::new()
        } else {
            format!(" with the tag {}", args.tags.join(" or "))
        };
        return Err(CliError::Invalid(format!(
            "no run directories{which} given and none under ./runs"
        )));
    }
    if args.once {
        print!(
            "{}",
            crate::cli_monitor::plain(&snapshots(&dirs), args.log_lines)
        );
        return Ok(());
    }
    run_tui(&dirs, args.log_lines).map_err(|e| CliError::Failed(format!("terminal: {e}")))
}

fn secs(s: Option<f64>) -> String {
    s.map_or_else(String::new, |s| format!("{s:.1} s"))
}

/// One line per figure of the run: stage, counts, workers, benchmark, elapsed and what remains.
fn headline(s: &Snapshot) -> Vec<String> {
    let total = s.steps.len();
    let mut lines = vec![
        format!(
            "{} ({}) — {} — elapsed {:.0} s",
            s.dir.display(),
            s.recipe,
            s.stage,
            s.elapsed_secs
        ),
        format!(
            "steps: {} running, {} up, {} done, {} failed, {} pending of {total}",
            s.count(StepState::Running),
            s.count(StepState::Up),
            s.count(StepState::Done),
            s.count(StepState::Failed),
            s.count(StepState::Pending) + s.count(StepState::Interrupted),
        ),
    ];
    if let Some((label, speed)) = &s.simulated {
        lines.push(format!(
            "SIMULATED (no inference engine runs): {label}; clock ×{speed}{}",
            if speed.parse::<f64>().is_ok_and(|x| x != 1.0) {
                " (live rates are wall-clock; results are written in model time)"
            } else {
                ""
            }
        ));
    }
    if let Some((h, e)) = s.workers {
        lines.push(format!("workers: {h}/{e} healthy"));
    }
    for (worker, g) in s.metrics.iter().take(8) {
        let v = |k: &str| g.get(k).copied();
        let mut parts = Vec::new();
        if let Some(r) = v("sglang:num_running_reqs") {
            parts.push(format!("running {r:.0}"));
        }
        if let Some(q) = v("sglang:num_queue_reqs") {
            parts.push(format!("queued {q:.0}"));
        }
        if let Some(u) = v("sglang:token_usage") {
            parts.push(format!("KV {:.0} %", u * 100.0));
        }
        if let Some(t) = v("sglang:gen_throughput") {
            parts.push(format!("{t:.0} tok/s"));
        }
        if !parts.is_empty() {
            lines.push(format!("  {worker}: {}", parts.join(", ")));
        }
    }
    if s.metrics.len() > 8 {
        lines.push(format!(
            "  … {} more worker(s) in the scrape",
            s.metrics.len() - 8
        ));
    }
    for h in s.hosts.iter().take(8) {
        let pct = |v: Option<f64>| v.map_or("–".into(), |v| format!("{:.0} %", v * 100.0));
        lines.push(format!(
            "  host {}: CPU {}, memory {}, {} open files",
            h.node,
            pct(h.cpu_busy),
            pct(h.mem_used),
            h.open_files.map_or("–".into(), |v| format!("{v:.0}"))
        ));
    }
    if s.hosts.len() > 8 {
        lines.push(format!("  … {} more host(s) sampled", s.hosts.len() - 8));
    }
    if let Some((step, line)) = &s.benchmark {
        lines.push(format!("benchmark: {step}: {line}"));
    }
    let remaining = s.remaining();
    if !remaining.is_empty() && s.finished.is_none() {
        let names: Vec<&str> = remaining.iter().take(6).map(|v| v.id.as_str()).collect();
        let more = remaining.len().saturating_sub(6);
        lines.push(format!(
            "remaining by the plan: {} step(s): {}{}",
            remaining.len(),
            names.join(", "),
            if more > 0 {
                format!(", … {more} more")
            } else {
                String::new()
            }
        ));
    }
    lines
}

/// The step whose log is worth showing: a running benchmark, else a failed step, else the latest running.
fn focus(s: &Snapshot) -> Option<&StepView> {
    s.steps
        .iter()
        .find(|v| v.kind == "run_benchmark" && v.state == StepState::Running)
        .or_else(|| s.steps.iter().find(|v| v.state == StepState::Failed))
        .or_else(|| s.steps.iter().rev().find(|v| v.state == StepState::Running))
}

fn log_tail(s: &Snapshot, step: &str, n: usize) -> String {
    srt_graph_engine::rundir::log_tail(&s.dir, step, n)
}

/// `--once`: every run's figures, its running and failed steps, and the log tail of the step in focus.
pub fn plain(snaps: &[Result<Snapshot, String>], log_lines: usize) -> String {
    let mut out = String::new();
    for s in snaps {
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                let _ = writeln!(out, "{e}\n");
                continue;
            }
        };
        for l in headline(s) {
            let _ = writeln!(out, "{l}");
        }
        for v in s
            .steps
            .iter()
            .filter(|v| matches!(v.state, StepState::Running | StepState::Failed))
        {
            let _ = writeln!(
                out,
                "  {:<8} {:<40} {:<8} {:>9}  {}",
                v.state.as_str(),
                v.id,
                v.node,
                secs(v.secs),
                v.detail.lines().next().unwrap_or("")
            );
        }
        if let Some(v) = focus(s) {
            let _ = writeln!(out, "  log of {} (last {log_lines} lines):", v.id);
            for l in log_tail(s, &v.id, log_lines).lines() {
                let _ = writeln!(out, "    {l}");
            }
        }
        out.push('\n');
    }
    out
}

struct Ui {
    dirs: Vec<PathBuf>,
    run: usize,
    step: usize,
    log_lines: usize,
}

fn draw(f: &mut ratatui::Frame, ui: &Ui, snaps: &[Result<Snapshot, String>]) {
    use ratatui::layout::{Constraint, Layout};
    use ratatui::style::{Color, Modifier, Style};
    use ratatui::text::Line;
    use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
    let mut head: Vec<Line> = Vec::new();
    for (i, s) in snaps.iter().enumerate() {
        let mark = if i == ui.run { "▶ " } else { "  " };
        match s {
            Ok(s) => {
                for (k, l) in headline(s).into_iter().enumerate() {
                    let text = if k == 0 {
                        format!("{mark}{l}")
                    } else {
                        format!("    {l}")
                    };
                    let style = if k == 0 && s.count(StepState::Failed) > 0 {
                        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
                    } else if k == 0 {
                        Style::default().add_modifier(Modifier::BOLD)
                    } else {
                        Style::default()
                    };
                    head.push(Line::styled(text, style));
                }
            }
            Err(e) => head.push(Line::from(format!("{mark}{e}"))),
        }
    }
    let head_height = (head.len() as u16 + 2).min(f.area().height / 2);
    let [top, mid, bottom, keys] = Layout::vertical([
        Constraint::Length(head_height),
        Constraint::Min(6),
        Constraint::Length(ui.log_lines as u16 + 2),
        Constraint::Length(1),
    ])
    .areas(f.area());
    f.render_widget(
        Paragraph::new(head).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" srt-graph monitor "),
        ),
        top,
    );
    let Some(Ok(s)) = snaps.get(ui.run) else {
        return;
    };
    let rows = s.steps.iter().map(|v| {
        let colour = match v.state {
            StepState::Failed => Color::Red,
            StepState::Running => Color::Yellow,
            StepState::Up => Color::Cyan,
            StepState::Done => Color::Green,
            _ => Color::Gray,
        };
        Row::new(vec![
            v.id.clone(),
            v.node.clone(),
            v.state.as_str().to_string(),
            secs(v.secs),
            v.detail.lines().next().unwrap_or("").to_string(),
        ])
        .style(Style::default().fg(colour))
    });
    let table = Table::new(
        rows,
        [
            Constraint::Percentage(34),
            Constraint::Length(10),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new(["step", "node", "state", "time", "detail"])
            .style(Style::default().add_modifier(Modifier::BOLD)),
    )
    .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" steps of {} ", s.recipe)),
    );
    let mut state =
        TableState::default().with_selected(Some(ui.step.min(s.steps.len().saturating_sub(1))));
    f.render_stateful_widget(table, mid, &mut state);
    if let Some(v) = s.steps.get(ui.step.min(s.steps.len().saturating_sub(1))) {
        let tail = log_tail(s, &v.id, ui.log_lines);
        f.render_widget(
            Paragraph::new(tail).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" log: {} ", v.id)),
            ),
            bottom,
        );
    }
    f.render_widget(
        Paragraph::new("↑/↓ step   Tab next run   q quit")
            .style(Style::default().fg(Color::DarkGray)),
        keys,
    );
}

/// The live UI until `q`, Esc or Ctrl-C; refreshes every second.
pub fn run_tui(dirs: &[PathBuf], log_lines: usize) -> std::io::Result<()> {
    use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
    let mut ui = Ui {
        dirs: dirs.to_vec(),
        run: 0,
        step: 0,
        log_lines,
    };
    let mut terminal = ratatui::init();
    let result = (|| -> std::io::Result<()> {
        loop {
            let snaps = snapshots(&ui.dirs);
            if ui.step == usize::MAX {
                ui.step = 0;
            }
            terminal.draw(|f| draw(f, &ui, &snaps))?;
            if !event::poll(Duration::from_secs(1))? {
                continue;
            }
            if let Event::Key(k) = event::read()? {
                let steps = snaps
                    .get(ui.run)
                    .and_then(|s| s.as_ref().ok())
                    .map_or(0, |s| s.steps.len());
                match k.code {
                    KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                    KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                        return Ok(())
                    }
                    KeyCode::Down | KeyCode::Char('j') => {
                        ui.step = (ui.step + 1).min(steps.saturating_sub(1))
                    }
                    KeyCode::Up | KeyCode::Char('k') => ui.step = ui.step.saturating_sub(1),
                    KeyCode::Tab => {
                        ui.run = (ui.run + 1) % ui.dirs.len();
                        ui.step = 0;
                    }
                    _ => {}
                }
            }
        }
    })();
    ratatui::restore();
    result
}
