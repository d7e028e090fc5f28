//! `chanx`: TypeScript clients from AsyncAPI documents, and document
//! checks. `chanx --help` lists the commands.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command, value_parser};

fn cli() -> Command {
    let document = || {
        Arg::new("document")
            .help(
                "The AsyncAPI document (JSON), as `--emit-asyncapi` or GET /asyncapi.json gives it",
            )
            .required(true)
            .value_parser(value_parser!(PathBuf))
    };
    Command::new("chanx")
        .about("The chanx command line: typed clients and checks from AsyncAPI documents")
        .version(env!("CARGO_PKG_VERSION"))
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("typescript")
                .about("Generates a typed TypeScript client (one file per channel, no runtime dependency)")
                .arg(document())
                .arg(
                    Arg::new("out")
                        .long("out")
                        .short('o')
                        .help("The directory to write (created; stale .ts files removed)")
                        .required(true)
                        .value_parser(value_parser!(PathBuf)),
                )
                .arg(
                    Arg::new("check")
                        .long("check")
                        .help("Writes nothing; fails when the directory is not what would be written")
                        .action(ArgAction::SetTrue),
                ),
        )
        .subcommand(
            Command::new("asyncapi")
                .about("Checks AsyncAPI documents")
                .subcommand_required(true)
                .subcommand(
                    Command::new("validate")
                        .about("Checks what clients rely on: version, info, $refs, channels, operations, payloads")
                        .arg(document()),
                )
                .subcommand(
                    Command::new("diff")
                        .about("Lists what changed between two documents; `!` marks what can break clients")
                        .arg(Arg::new("old").required(true).value_parser(value_parser!(PathBuf)))
                        .arg(Arg::new("new").required(true).value_parser(value_parser!(PathBuf)))
                        .arg(
                            Arg::new("fail-on-breaking")
                                .long("fail-on-breaking")
                                .help("Exits with 1 when a change can break clients")
                                .action(ArgAction::SetTrue),
                        ),
                ),
        )
}

fn main() -> ExitCode {
    let matches = cli().get_matches();
    match run(&matches) {
        Ok(code) => code,
        Err(error) => {
            let _ = writeln!(std::io::stderr(), "chanx: {error}");
            ExitCode::FAILURE
        }
    }
}

fn path<'a>(matches: &'a ArgMatches, name: &str) -> Result<&'a PathBuf, chanx_cli::Error> {
    matches
        .get_one::<PathBuf>(name)
        .ok_or_else(|| chanx_cli::Error::Document(format!("missing argument {name}")))
}

fn run(matches: &ArgMatches) -> Result<ExitCode, chanx_cli::Error> {
    let mut out = std::io::stdout().lock();
    match matches.subcommand() {
        Some(("typescript", args)) => {
            let document = chanx_cli::read_document(path(args, "document")?)?;
            let files = chanx_cli::typescript::generate(&document)?;
            let dir = path(args, "out")?;
            if args.get_flag("check") {
                let stale = chanx_cli::stale_files(&files, dir);
                for line in &stale {
                    let _ = writeln!(out, "{line}");
                }
                return Ok(if stale.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                });
            }
            chanx_cli::write_files(&files, dir)?;
            let _ = writeln!(out, "wrote {} files to {}", files.len(), dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Some(("asyncapi", args)) => match args.subcommand() {
            Some(("validate", args)) => {
                let document = chanx_cli::read_document(path(args, "document")?)?;
                let problems = chanx_cli::check::validate(&document);
                for problem in &problems {
                    let _ = writeln!(out, "{problem}");
                }
                if problems.is_empty() {
                    let _ = writeln!(out, "ok");
                    Ok(ExitCode::SUCCESS)
                } else {
                    Ok(ExitCode::FAILURE)
                }
            }
            Some(("diff", args)) => {
                let old = chanx_cli::read_document(path(args, "old")?)?;
                let new = chanx_cli::read_document(path(args, "new")?)?;
                let lines = chanx_cli::check::diff(&old, &new);
                for line in &lines {
                    let _ = writeln!(out, "{line}");
                }
                let breaking = lines.iter().any(|line| line.ends_with('!'));
                Ok(if breaking && args.get_flag("fail-on-breaking") {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                })
            }
            _ => Ok(ExitCode::FAILURE),
        },
        _ => Ok(ExitCode::FAILURE),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        super::cli().debug_assert();
    }
}
