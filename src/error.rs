//! The CLI's one error type and its one mapping to the documented exit codes. Every command returns
//! `Result<(), CliError>`; `main` prints the error once and exits with `exit_code()`.

use srt_graph_steps::RecipeError;
use std::fmt;

/// Exit codes, documented in `--help`.
pub mod exit {
    pub const OK: u8 = 0;
    /// Something went wrong that is not the recipe's or a step's fault (I/O, environment).
    pub const ERROR: u8 = 1;
    /// The recipe or cluster config is invalid; nothing was started.
    pub const INVALID: u8 = 2;
    /// A step failed (after its retries) or a service died; everything was torn down.
    pub const STEP_FAILED: u8 = 3;
    /// Interrupted by SIGINT/SIGTERM; everything was torn down.
    pub const INTERRUPTED: u8 = 130;
}

#[derive(Debug)]
pub enum CliError {
    /// The recipe or the cluster config cannot be read or is invalid; printed with source lines.
    Recipe(RecipeError),
    /// The command line, the recipe or a run directory does not allow what was asked (exit 2).
    Invalid(String),
    /// Something outside the recipe went wrong: I/O, the environment, a node (exit 1).
    Failed(String),
    /// A step failed or a service died; the run's summary already said which (exit 3).
    StepFailed,
    /// Interrupted by a signal; everything was torn down (exit 130).
    Interrupted,
    /// An error of one of srtctl's verbs, which exit 1 whatever went wrong (as srtctl does).
    Srtctl(Box<CliError>),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Recipe(RecipeError::Io { .. }) | CliError::Failed(_) => exit::ERROR,
            CliError::Recipe(RecipeError::Invalid(_)) | CliError::Invalid(_) => exit::INVALID,
            CliError::StepFailed => exit::STEP_FAILED,
            CliError::Interrupted => exit::INTERRUPTED,
            CliError::Srtctl(_) => exit::ERROR,
        }
    }

    /// This error as srtctl's verbs report it (exit 1).
    pub fn srtctl(self) -> CliError {
        match self {
            e @ CliError::Srtctl(_) => e,
            e => CliError::Srtctl(Box::new(e)),
        }
    }

    /// Prints the error to stderr (nothing for outcomes the run's own report already told).
    pub fn report(&self) {
        match self {
            CliError::Recipe(RecipeError::Invalid(diags)) => {
                for d in diags {
                    let source = std::fs::read(&d.file)
                        .ok()
                        .map(|b| String::from_utf8_lossy(&b).into_owned());
                    eprintln!("error: {}\n", d.render(source.as_deref()));
                }
                eprintln!("{} error(s); nothing was started", diags.len());
            }
            CliError::StepFailed | CliError::Interrupted => {}
            CliError::Srtctl(inner) => inner.report(),
            other => eprintln!("error: {other}"),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Recipe(e) => write!(f, "{e}"),
            CliError::Invalid(m) | CliError::Failed(m) => f.write_str(m),
            CliError::StepFailed => f.write_str("a step failed"),
            CliError::Interrupted => f.write_str("interrupted"),
            CliError::Srtctl(inner) => write!(f, "{inner}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<RecipeError> for CliError {
    fn from(e: RecipeError) -> Self {
        CliError::Recipe(e)
    }
}

pub type CliResult = Result<(), CliError>;
