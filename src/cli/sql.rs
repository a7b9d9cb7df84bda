//! `syncline sql "SELECT …"`: a read-only query over the state (see `syncline::sql` for its tables),
//! printed as a table, as JSON lines (`--json`) or as CSV (`--csv`).

use std::process::ExitCode;
use std::time::Duration;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use clap::Args;
use syncline::sql::{Answer, Limits};

#[derive(Args)]
pub struct SqlArgs {
    /// The query: SELECT (or WITH, EXPLAIN, SHOW, DESCRIBE) over jobs, contracts, calls, and
    /// `register.schema` for each register schema.
    query: String,
    /// Rows printed, at most (more are cut off, and it says so).
    #[arg(long, default_value_t = 10_000)]
    limit: usize,
    /// Seconds the query may take.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// One JSON object a line.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// CSV with a header line.
    #[arg(long)]
    csv: bool,
}

pub async fn run(state: &super::State, args: SqlArgs) -> anyhow::Result<ExitCode> {
    let state = state.open().await?;
    let limits = Limits { rows: args.limit, time: Duration::from_secs_f64(args.timeout.clamp(0.1, 86_400.0)), ..Limits::default() };
    let answer = match syncline::sql::query(&state, &args.query, limits).await {
        Ok(answer) => answer,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    if args.json {
        for row in answer.json_rows()? {
            println!("{}", serde_json::Value::Object(row));
        }
    } else {
        let cells = cells(&answer)?;
        if args.csv { print_csv(&answer, &cells) } else { print_table(&answer, &cells) }
    }
    if answer.truncated {
        eprintln!("(cut off at {} rows: --limit N shows more)", answer.rows());
    }
    Ok(ExitCode::SUCCESS)
}

/// Every value as the text it prints as (NULL as empty), row by row.
fn cells(answer: &Answer) -> anyhow::Result<Vec<Vec<String>>> {
    let options = FormatOptions::default().with_null("");
    let mut rows = Vec::new();
    for batch in &answer.batches {
        let formatters: Vec<ArrayFormatter> =
            batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<_, _>>()?;
        for row in 0..batch.num_rows() {
            rows.push(formatters.iter().map(|f| super::printable(&f.value(row).to_string()).into_owned()).collect());
        }
    }
    Ok(rows)
}

fn print_table(answer: &Answer, rows: &[Vec<String>]) {
    let names: Vec<&str> = answer.schema.fields().iter().map(|f| f.name().as_str()).collect();
    // Wide values are cut at 60 characters in the table (--json and --csv print them whole).
    let shown =
        |text: &str| if text.chars().count() > 60 { format!("{}…", text.chars().take(59).collect::<String>()) } else { text.to_string() };
    let rows: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|c| shown(c).replace(['\n', '\t'], " ")).collect()).collect();
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| rows.iter().map(|r| r[i].chars().count()).chain([n.chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(names.clone());
    line(widths.iter().map(|w| &"--------------------------------------------------------------"[..(*w).min(62)]).collect());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    println!("({} row{})", rows.len(), if rows.len() == 1 { "" } else { "s" });
}

fn print_csv(answer: &Answer, rows: &[Vec<String>]) {
    let field = |text: &str| {
        if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
    };
    let names: Vec<String> = answer.schema.fields().iter().map(|f| field(f.name())).collect();
    println!("{}", names.join(","));
    for row in rows {
        println!("{}", row.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
    }
}
