//! The `semleak` binary: parse the command line, run the command, turn an
//! error into exit status 2 with its message chain (the only `anyhow`).

use clap::Parser;

use semleak::cli::Cli;
use semleak::commands;
use semleak::exit::EXIT_ERROR;

fn main() {
    let cli = Cli::parse();
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("semleak: error: {e:#}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}
