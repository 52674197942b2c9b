//! `xvsctl`: the control process of xvs. Talks to a running `xvsd` over its
//! Unix socket; prints tables for people and JSON (`--json`) for programs.
//! Exit status 0 on success; otherwise one line on stderr and status 1.

mod cli;
mod render;
mod trace;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use xvs_control::client::Client;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    match run(&args) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("xvsctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &cli::Args) -> anyhow::Result<String> {
    let req = args.command.to_request()?;
    // The connect error names the socket and its cause in one line: keep
    // it as a message (its source would be printed a second time).
    let mut client = Client::connect(&args.socket).map_err(|e| anyhow::anyhow!("{e}"))?;
    let reply = client.call(&req).context(args.command.name())?;
    render::render(&reply, args.json)
}
