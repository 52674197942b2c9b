//! `xvs-xdp-attach IFACE [native|generic|auto]`: loads the classifier,
//! makes IFACE an access port whose untagged traffic is bridge domain 1,
//! attaches, prints `attached IFACE MODE prog-id ID`, then holds the
//! attachment until its standard input closes (or 10 minutes pass), printing
//! the nonzero counters as it exits.
//!
//! A debugging aid, and the process the SIGKILL test kills: the program must
//! leave with it because it is attached through a bpf_link.

use std::io::{BufRead as _, Write as _};
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use xvs_ebpf::{ifindex_of, Classifier, PortRole, XdpMode};

const MAX_HOLD: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (iface, mode) = match args.as_slice() {
        [iface] => (iface.as_str(), XdpMode::Auto),
        [iface, mode] => match mode.parse() {
            Ok(m) => (iface.as_str(), m),
            Err(e) => return fail(&e),
        },
        _ => {
            eprintln!("usage: xvs-xdp-attach IFACE [native|generic|auto]");
            return ExitCode::from(2);
        }
    };
    match run(iface, mode) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

fn fail(e: &xvs_ebpf::Error) -> ExitCode {
    eprintln!("xvs-xdp-attach: {e}");
    ExitCode::FAILURE
}

fn run(iface: &str, mode: XdpMode) -> xvs_ebpf::Result<()> {
    let cls = Classifier::load()?;
    cls.set_attachment(1, 0, 1)?;
    cls.set_port(ifindex_of(iface)?, PortRole::Access, 1)?;
    let attachment = cls.attach(iface, mode)?;
    println!(
        "attached {} {} prog-id {}",
        attachment.iface(),
        attachment.mode(),
        cls.program_id()
    );
    let _ = std::io::stdout().flush();

    // Hold until stdin reaches EOF, bounded in time.
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let stdin = std::io::stdin();
        while stdin
            .lock()
            .read_line(&mut line)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            line.clear();
        }
        let _ = done_tx.send(());
    });
    let _ = done_rx.recv_timeout(MAX_HOLD);

    for (counter, value) in cls.counters()?.nonzero() {
        println!("{counter} {value}");
    }
    drop(attachment);
    Ok(())
}
