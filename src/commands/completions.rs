//! `semleak completions SHELL`: a completion script generated from the
//! command-line definition, so it never goes stale.

use clap::CommandFactory;

use super::write_stdout;
use crate::cli::{Cli, CompletionsArgs};
use crate::exit::{AppError, EXIT_OK};

pub fn completions(args: &CompletionsArgs) -> Result<i32, AppError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "semleak", &mut script);
    write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(EXIT_OK)
}
