//! `--output table|json`: JSON is the API's own shape; tables flatten the top-level fields.

use chrono::{DateTime, SecondsFormat, Utc};
use clap::ValueEnum;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;
use serde_json::Value;

/// `println!` for the command's output. A reader that went away (`tessera … | head`) ends the
/// command quietly, as it ends other Unix tools, where `println!` would panic.
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::write_line(format_args!($($arg)*)) };
}
pub(crate) use out;

pub fn write_line(args: std::fmt::Arguments) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing the output: {e}");
            std::process::exit(1);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Object(m) if m.is_empty() => "-".into(),
        other => other.to_string(),
    }
}

pub fn print_item<T: Serialize>(out: Output, item: &T) -> anyhow::Result<()> {
    let v = serde_json::to_value(item)?;
    match out {
        Output::Json => out!("{}", serde_json::to_string_pretty(&v)?),
        Output::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY);
            if let Value::Object(m) = &v {
                for (k, val) in m {
                    t.add_row(vec![k.clone(), cell(val)]);
                }
            }
            out!("{t}");
        }
    }
    Ok(())
}

pub fn print_list<T: Serialize>(out: Output, items: &[T]) -> anyhow::Result<()> {
    let rows: Vec<Value> = items
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?;
    match out {
        Output::Json => out!("{}", serde_json::to_string_pretty(&rows)?),
        Output::Table => {
            let mut t = Table::new();
            t.load_preset(UTF8_BORDERS_ONLY);
            let headers: Vec<String> = match rows.first() {
                Some(Value::Object(m)) => m.keys().cloned().collect(),
                _ => vec![],
            };
            t.set_header(headers.clone());
            for r in &rows {
                t.add_row(headers.iter().map(|h| cell(&r[h])).collect::<Vec<_>>());
            }
            out!("{t}");
        }
    }
    Ok(())
}

/// A table with these columns, in this order (for views that pick and flatten fields).
pub fn print_table(headers: &[&str], rows: Vec<Vec<String>>) {
    out!("{}", table(headers, rows));
}

/// One `field  value` row per pair, in this order.
pub fn print_pairs(pairs: Vec<(&str, String)>) {
    out!("{}", pairs_table(pairs));
}

/// What [`print_table`] prints.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header(headers.to_vec());
    for r in rows {
        t.add_row(r);
    }
    t
}

/// What [`print_pairs`] prints; an empty value shows as `-`.
pub fn pairs_table(pairs: Vec<(&str, String)>) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    for (k, v) in pairs {
        t.add_row(vec![k.to_string(), or_dash(&v)]);
    }
    t
}

/// A timestamp for a table cell: RFC 3339, to the second, in UTC.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn or_dash(s: &str) -> String {
    if s.is_empty() { "-".into() } else { s.into() }
}
