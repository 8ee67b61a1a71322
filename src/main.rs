use clap::Parser;

use semleak::app::{self, EXIT_ERROR};
use semleak::cli::Cli;

fn main() {
    let cli = Cli::parse();
    let code = match app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            let e = anyhow::Error::from(e);
            eprintln!("semleak: error: {e:#}");
            EXIT_ERROR
        }
    };
    std::process::exit(code);
}
