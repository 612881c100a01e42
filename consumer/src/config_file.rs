//! The `--config` TOML file: every command-line flag by its long name (`downstream-uri`,
//! `interval`, `once`, ...) plus the upstream URI's query parameters (sink options,
//! `listing-lag`, storage credentials), so secrets can live in a file instead of the command
//! line (where `ps` shows them).
//!
//! Precedence, highest first: command line, environment (`CDC_CONSUMER_UPSTREAM_URI`,
//! `CDC_CONSUMER_DOWNSTREAM_URI`, `RUST_LOG`), the file, the built-in default. For URI
//! parameters the URI's query wins over the file.
//!
//! Invariants: the file is read once, before the command line is validated, so a flag from the
//! file goes through exactly the checks of the same flag typed; a key that is neither a flag nor
//! a URI parameter is an error naming it (in [`crate::config::Config::from_args`]); `config`
//! itself, arrays and tables are errors naming the key and the file; a boolean flag takes
//! `true`/`false` only.

use crate::config::Args;
use clap::{ArgAction, CommandFactory, FromArgMatches};
use std::ffi::OsString;
use std::path::Path;

/// The long names of the flags a `--config` file may set (every flag but `--config`,
/// `--help` and `--version`).
pub fn flag_names() -> Vec<String> {
    Args::command()
        .get_arguments()
        .filter_map(|a| a.get_long())
        .filter(|l| !matches!(*l, "config" | "help" | "version"))
        .map(str::to_string)
        .collect()
}

/// Parses a command line, filling the flags it and the environment left unset from the
/// `--config` file when one is named.
pub fn parse_args<I, T>(argv: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut argv: Vec<OsString> = argv.into_iter().map(Into::into).collect();
    // First pass: which flags the command line and environment gave, and the file's path.
    // `--upstream-uri` may come from the file, so it is not required yet.
    let lenient = Args::command().mut_arg("upstream_uri", |a| a.required(false));
    let given = lenient.try_get_matches_from(&argv)?;
    if let Some(file) = given.get_one::<std::path::PathBuf>("config") {
        argv.extend(flags_from_file(file, &given)?);
    }
    let mut cmd = Args::command();
    let matches = cmd.try_get_matches_from_mut(&argv)?;
    Args::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
}

fn file_error(file: &Path, msg: String) -> clap::Error {
    let mut cmd = Args::command();
    cmd.error(
        clap::error::ErrorKind::InvalidValue,
        format!("--config {}: {msg}", file.display()),
    )
}

/// Extra command-line words for the file's flag keys the command line and environment left
/// unset (source still the default, or no value).
fn flags_from_file(file: &Path, given: &clap::ArgMatches) -> Result<Vec<OsString>, clap::Error> {
    let text =
        std::fs::read_to_string(file).map_err(|e| file_error(file, format!("cannot read: {e}")))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_error(file, format!("not valid TOML: {e}")))?;
    if table.contains_key("config") {
        return Err(file_error(
            file,
            "key `config`: a config file cannot name another one".into(),
        ));
    }
    let cmd = Args::command();
    let mut words = Vec::new();
    for (key, value) in &table {
        let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(key)) else {
            continue; // a URI parameter: Config::from_args takes (or refuses) it
        };
        let source = given.value_source(arg.get_id().as_str());
        if matches!(
            source,
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        ) {
            continue;
        }
        let flag = format!("--{key}");
        match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(b)) => {
                if *b {
                    words.push(flag.into());
                }
            }
            (ArgAction::SetTrue, other) => {
                return Err(file_error(
                    file,
                    format!(
                        "key `{key}`: expected true or false, got a {}",
                        other.type_str()
                    ),
                ))
            }
            (_, toml::Value::String(s)) => words.push(format!("{flag}={s}").into()),
            (_, toml::Value::Integer(i)) => words.push(format!("{flag}={i}").into()),
            (_, toml::Value::Boolean(b)) => words.push(format!("{flag}={b}").into()),
            (_, other) => {
                return Err(file_error(
                    file,
                    format!(
                        "key `{key}`: expected a string or number, got a {}",
                        other.type_str()
                    ),
                ))
            }
        }
    }
    Ok(words)
}
