//! The `rotor` command.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = rotor::cli::Cli::parse();
    rotor::cli::run(cli).await
}
