//! The `shipshape` binary: `serve` (default), `migrate`, `openapi`, `audit verify`,
//! `seed-demo`.

use clap::Parser;
use shipshape_api::config::{AuditCommand, Cli, Command};

/// mimalloc rather than the system allocator: glibc's keeps a heap per thread that ever
/// allocated and rarely gives it back, so every burst of blocking work (event streams,
/// password hashing) left the server tens of MiB larger for good. mimalloc returns freed
/// pages to the system. Built without transparent huge pages (`no_thp`): with them, every
/// touched 2 MiB of its arena counted whole, and an idle server held over 100 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    shipshape_api::logging::init(cli.config.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            println!("{}", shipshape_api::openapi::document_json());
            Ok(())
        }
        Command::Migrate => shipshape_api::server::migrate(&cli.config),
        Command::SeedDemo { runs, days } => shipshape_api::server::seed_demo(
            &cli.config,
            usize::try_from(runs).unwrap_or(600),
            i64::from(days),
        ),
        Command::Serve => shipshape_api::server::serve(cli.config),
        Command::Backup { file } => shipshape_api::transfer::backup(&cli.config, &file),
        Command::Export { file } => shipshape_api::transfer::export(&cli.config, &file),
        Command::Import { file } => shipshape_api::transfer::import(&cli.config, &file),
        Command::Audit {
            action: AuditCommand::Verify { run },
        } => match shipshape_api::verify::verify(&cli.config, run.as_deref()) {
            Ok(true) => Ok(()),
            Ok(false) => return std::process::ExitCode::FAILURE,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shipshape: {e}");
            tracing::error!(error = %e, "shipshape stopped");
            std::process::ExitCode::FAILURE
        }
    }
}
